import { deterministicKey, deterministicUuid } from './ids.js';
import type { GeneratedNodesSpec, ScenarioExecution, ScenarioNode } from './scenario.js';
import { generateText } from './text-generator.js';

/** One run of an output node: its `node_execute_status` entry and its result text. */
export interface OutputNode {
  /** Key in `node_execute_status`: the node title, or an invented key for a repeat. */
  key: string;
  nodeId: string;
  nodeExecuteUuid: string;
  isFinish: boolean;
  updateTime?: number | undefined;
  loopIndex?: number | undefined;
  batchIndex?: number | undefined;
  subExecuteId?: string | undefined;
  extra?: Record<string, unknown> | undefined;
  /** `is_finish` returned by the execute-node endpoint when it differs from the map entry. */
  resultIsFinish?: boolean | undefined;
  whileRunning: 'absent' | 'unfinished' | 'finished';
  /** Builds the `node_output` text. Generated bodies are rebuilt on each call to keep memory flat. */
  text(): string;
}

/** Lists the output nodes of an execution: the scenario's own, then the generated ones. */
export function buildOutputNodes(execution: ScenarioExecution): OutputNode[] {
  const nodes = execution.nodes.map(fromScenarioNode);
  if (execution.generatedNodes !== undefined) {
    nodes.push(...generateNodes(execution.executeId, execution.generatedNodes));
  }
  return nodes;
}

function fromScenarioNode(node: ScenarioNode): OutputNode {
  return {
    key: node.key,
    nodeId: node.nodeId,
    nodeExecuteUuid: node.nodeExecuteUuid,
    isFinish: node.isFinish,
    updateTime: node.updateTime,
    loopIndex: node.loopIndex,
    batchIndex: node.batchIndex,
    subExecuteId: node.subExecuteId,
    extra: node.extra,
    resultIsFinish: node.resultIsFinish,
    whileRunning: node.whileRunning,
    text: scenarioNodeText(node),
  };
}

function scenarioNodeText(node: ScenarioNode): () => string {
  const { text, json, generate } = node;
  if (text !== undefined) {
    return () => text;
  }
  if (json !== undefined) {
    const serialized = JSON.stringify(json);
    return () => serialized;
  }
  if (generate !== undefined) {
    const seed = generate.seed ?? node.nodeExecuteUuid;
    return () => generateText(generate, seed);
  }
  return () => '';
}

/**
 * Generates `spec.count` node runs. Runs come in groups of `repeatsPerTitle`
 * that share a title and node id, like one output node inside a loop or batch:
 * the first run of a group is keyed by its title, the repeats by invented keys.
 */
function generateNodes(executeId: string, spec: GeneratedNodesSpec): OutputNode[] {
  const nodes: OutputNode[] = [];

  for (let index = 0; index < spec.count; index += 1) {
    const group = Math.floor(index / spec.repeatsPerTitle);
    const position = index % spec.repeatsPerTitle;
    const title = `${spec.titlePrefix}${group + 1}`;
    const uuid = deterministicUuid(`${executeId}:generated:${index}`);
    const repeated = spec.repeatsPerTitle > 1;

    nodes.push({
      key: position === 0 ? title : deterministicKey(uuid),
      nodeId: String(spec.firstNodeId + group),
      nodeExecuteUuid: uuid,
      isFinish: true,
      loopIndex: repeated && spec.repeatKind === 'loop' ? position : undefined,
      batchIndex: repeated && spec.repeatKind === 'batch' ? position : undefined,
      whileRunning: 'absent',
      text: () => generateText(spec, uuid),
    });
  }

  return nodes;
}

/** Builds the wire value of one `node_execute_status` entry. */
export function nodeStatusEntry(node: OutputNode, isFinish: boolean, fallbackUpdateTime: number): Record<string, unknown> {
  const entry: Record<string, unknown> = { node_id: node.nodeId, is_finish: isFinish };
  if (node.loopIndex !== undefined) entry['loop_index'] = node.loopIndex;
  if (node.batchIndex !== undefined) entry['batch_index'] = node.batchIndex;
  if (node.subExecuteId !== undefined) entry['sub_execute_id'] = node.subExecuteId;
  entry['update_time'] = node.updateTime ?? fallbackUpdateTime;
  entry['node_execute_uuid'] = node.nodeExecuteUuid;
  return { ...entry, ...node.extra };
}
