import type { Scenario } from '../../src/fake-server/index.js';

export const WORKFLOW_ID = '7350000000000000101';
export const EXECUTE_ID = '7431000000000000101';
export const TOKEN = 'pat_test_token_5d2a';

/**
 * An address where nothing accepts connections. Port 9 is below Linux's range of ephemeral
 * ports (32768 to 60999 by default), so no fake server that a parallel test starts can take it,
 * as one once took the port of a closed server.
 */
export const UNREACHABLE_URL = 'http://127.0.0.1:9';

type ScenarioNode = NonNullable<NonNullable<Scenario['executions']>[number]['nodes']>[number];

/** Builds the uuid of test node `index`, shaped like the ones Coze sends. */
export function nodeUuid(index: number): string {
  return `0000${String(index).padStart(4, '0')}-1111-4222-8333-444455556666`;
}

/** Chinese text of about `chars` characters, different for each node. */
export function nodeText(index: number, chars = 60): string {
  const base = `第${index}段：归档工具必须在二十四小时内保存每一个输出节点的结果，不能遗漏，也不能写出半个文件。`;
  return base.repeat(Math.ceil(chars / base.length)).slice(0, chars);
}

/** Builds one successful execution with `count` small output nodes, plus optional scenario fields. */
export function executionScenario(count: number, extra: Partial<Scenario> = {}, nodeExtra: (index: number) => Partial<ScenarioNode> = () => ({})): Scenario {
  const nodes: ScenarioNode[] = [];
  for (let index = 1; index <= count; index += 1) {
    nodes.push({ key: `节点${index}`, nodeId: String(100000 + index), nodeExecuteUuid: nodeUuid(index), text: nodeText(index), ...nodeExtra(index) });
  }
  return {
    token: TOKEN,
    executions: [{ workflowId: WORKFLOW_ID, executeId: EXECUTE_ID, nodes }],
    ...extra,
  };
}
