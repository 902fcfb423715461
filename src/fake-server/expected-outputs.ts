import { buildOutputNodes } from './nodes.js';
import { loadScenario, parseScenario, type Scenario } from './scenario.js';

/** An output node of a scenario execution, with the text the server sends for it. */
export interface ExpectedNodeOutput {
  key: string;
  nodeId: string;
  nodeExecuteUuid: string;
  isFinish: boolean;
  loopIndex?: number | undefined;
  batchIndex?: number | undefined;
  subExecuteId?: string | undefined;
  /** Builds the `node_output` text of the finished execution, anew on each call for generated bodies. */
  text(): string;
}

/**
 * Lists what the fake server holds for one execution, so tests can compare an
 * archive with the source without copying generated text into fixtures.
 * Returns an empty list when the scenario has no execution with that id.
 */
export function listNodeOutputs(scenario: Scenario | string, executeId: string): ExpectedNodeOutput[] {
  const parsed = typeof scenario === 'string' ? parseScenario(loadScenario(scenario), scenario) : parseScenario(scenario);
  const execution = parsed.executions.find((candidate) => candidate.executeId === executeId);
  if (execution === undefined) {
    return [];
  }

  return buildOutputNodes(execution).map((node) => ({
    key: node.key,
    nodeId: node.nodeId,
    nodeExecuteUuid: node.nodeExecuteUuid,
    isFinish: node.resultIsFinish ?? node.isFinish,
    loopIndex: node.loopIndex,
    batchIndex: node.batchIndex,
    subExecuteId: node.subExecuteId,
    text: node.text,
  }));
}
