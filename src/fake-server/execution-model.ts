import { createHash } from 'node:crypto';

import { buildOutputNodes, nodeStatusEntry, type OutputNode } from './nodes.js';
import type { ExpirySetting, ScenarioExecution } from './scenario.js';

/** State of an execution as the run-history endpoint shows it at one moment. */
export type Phase = 'notFound' | 'running' | 'final';

/** The result of an output node as the execute-node endpoint sends it. */
export interface NodeResult {
  isFinish: boolean;
  nodeOutput: string;
}

/**
 * One scripted execution: its record, its output nodes and its timeline.
 * Counts run-history polls, because a timeline can finish after N polls.
 */
export class ExecutionModel {
  readonly workflowId: string;
  readonly executeId: string;
  readonly expiry: ExpirySetting;
  readonly createTime: number;
  readonly updateTime: number;

  private readonly spec: ScenarioExecution;
  private readonly startMs: number;
  private readonly nodes: OutputNode[];
  private readonly nodesByUuid: Map<string, OutputNode>;
  private polls = 0;
  private finalDataText: string | undefined;

  constructor(spec: ScenarioExecution, expiry: ExpirySetting, startMs: number) {
    this.spec = spec;
    this.workflowId = spec.workflowId;
    this.executeId = spec.executeId;
    this.expiry = { ...expiry, ...spec.expiry };
    this.startMs = startMs;

    const startSeconds = Math.floor(startMs / 1000);
    this.createTime = integerOr(spec.record['create_time'], startSeconds - spec.startedSecondsAgo);
    this.updateTime = integerOr(spec.record['update_time'], this.createTime + spec.durationSeconds);

    this.nodes = buildOutputNodes(spec);
    this.nodesByUuid = indexNodes(this.nodes, spec.executeId);
  }

  /** Returns the phase for a run-history request and counts it as one poll. */
  phaseForPoll(nowMs: number): Phase {
    const phase = this.phaseAt(this.polls, nowMs);
    this.polls += 1;
    return phase;
  }

  /** Returns the phase last shown by run history, so node results agree with the last poll. */
  phaseForNode(nowMs: number): Phase {
    if (this.polls === 0 && (this.spec.timeline?.notFoundPolls ?? 0) > 0) {
      return 'notFound';
    }
    return this.phaseAt(Math.max(this.polls - 1, 0), nowMs);
  }

  /** Tells whether output-node results have passed their retention time. */
  isExpired(nowMs: number): boolean {
    return Math.floor(nowMs / 1000) - this.updateTime > this.expiry.afterSeconds;
  }

  /** Builds the run-history `data` array as JSON text. */
  dataText(phase: Exclude<Phase, 'notFound'>, nowMs: number): string {
    if (phase === 'running') {
      return JSON.stringify([this.runningRecord(nowMs)]);
    }
    // A finished record never changes, and with 20,000 nodes it is megabytes of JSON.
    this.finalDataText ??= JSON.stringify([this.finalRecord()]);
    return this.finalDataText;
  }

  hasNode(uuid: string): boolean {
    return this.nodesByUuid.has(uuid);
  }

  /** Returns the node result in the given phase, or undefined when run history does not list it. */
  nodeResult(uuid: string, phase: Exclude<Phase, 'notFound'>): NodeResult | undefined {
    const node = this.nodesByUuid.get(uuid);
    if (node === undefined) {
      return undefined;
    }
    if (phase === 'final') {
      return { isFinish: node.resultIsFinish ?? node.isFinish, nodeOutput: node.text() };
    }
    if (node.whileRunning === 'absent') {
      return undefined;
    }
    if (node.whileRunning === 'unfinished') {
      const text = node.text();
      return { isFinish: false, nodeOutput: text.slice(0, Math.floor(text.length / 2)) };
    }
    return { isFinish: true, nodeOutput: node.text() };
  }

  private phaseAt(pollIndex: number, nowMs: number): Phase {
    const timeline = this.spec.timeline;
    if (timeline === undefined) {
      return 'final';
    }
    if (pollIndex < timeline.notFoundPolls) {
      return 'notFound';
    }

    const pollsDone =
      timeline.finishAfterPolls !== undefined && pollIndex - timeline.notFoundPolls >= timeline.finishAfterPolls;
    const timeDone = timeline.finishAfterMs !== undefined && nowMs - this.startMs >= timeline.finishAfterMs;
    return pollsDone || timeDone ? 'final' : 'running';
  }

  private finalRecord(): Record<string, unknown> {
    const record: Record<string, unknown> = {
      ...this.defaultRecord(),
      ...this.spec.record,
      output: this.outputText(),
    };
    this.setNodeStatus(record, (node) => ({ visible: true, isFinish: node.isFinish }));
    return record;
  }

  private runningRecord(nowMs: number): Record<string, unknown> {
    const record: Record<string, unknown> = {
      ...this.defaultRecord(),
      ...this.spec.record,
      execute_status: 'Running',
      output: this.spec.timeline?.runningOutput ?? '',
      error_code: '',
      update_time: Math.max(this.createTime, Math.floor(nowMs / 1000)),
      is_output_trimmed: false,
    };
    delete record['error_message'];

    this.setNodeStatus(record, (node) => ({
      visible: node.whileRunning !== 'absent',
      isFinish: node.whileRunning === 'finished' && node.isFinish,
    }));
    return record;
  }

  private defaultRecord(): Record<string, unknown> {
    const { workflowId, executeId } = this.spec;
    return {
      execute_id: executeId,
      execute_status: 'Success',
      bot_id: '0',
      connector_id: '1024',
      connector_uid: '2750419386152274',
      run_mode: 0,
      logid: executionLogid(executeId, this.createTime),
      create_time: this.createTime,
      update_time: this.updateTime,
      output: '',
      error_code: '',
      debug_url: `https://www.coze.cn/work_flow?execute_id=${executeId}&space_id=7350000000000000000&workflow_id=${workflowId}&execute_mode=2`,
      is_output_trimmed: false,
      usage: { input_count: 0, output_count: 0, token_count: 0 },
    };
  }

  // An output object keeps its own key order, and an inline node key already
  // present in it keeps its place, so a scenario can position each value.
  private outputText(): string {
    const output = this.spec.record.output;
    if (output === undefined || typeof output === 'string') {
      return output ?? '';
    }

    const merged: Record<string, unknown> = { ...output };
    for (const key of this.spec.inlineNodes) {
      const node = this.nodes.find((candidate) => candidate.key === key);
      merged[key] = node === undefined ? '' : node.text();
    }
    return JSON.stringify(merged);
  }

  private setNodeStatus(
    record: Record<string, unknown>,
    view: (node: OutputNode) => { visible: boolean; isFinish: boolean },
  ): void {
    if ('node_execute_status' in this.spec.record) {
      return;
    }
    if (this.spec.nodeExecuteStatus === 'absent') {
      delete record['node_execute_status'];
      return;
    }

    // Without a prototype, a node titled `__proto__` becomes a key like any other.
    const map: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    if (this.spec.nodeExecuteStatus === 'fromNodes') {
      for (const node of this.nodes) {
        const { visible, isFinish } = view(node);
        if (visible) {
          map[node.key] = nodeStatusEntry(node, isFinish, integerOr(record['update_time'], this.updateTime));
        }
      }
    }
    record['node_execute_status'] = map;
  }
}

function integerOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : fallback;
}

function indexNodes(nodes: OutputNode[], executeId: string): Map<string, OutputNode> {
  const byUuid = new Map<string, OutputNode>();
  const keys = new Set<string>();

  for (const node of nodes) {
    if (byUuid.has(node.nodeExecuteUuid)) {
      throw new Error(`execution ${executeId}: duplicate node_execute_uuid ${node.nodeExecuteUuid}`);
    }
    if (keys.has(node.key)) {
      throw new Error(`execution ${executeId}: duplicate node_execute_status key ${node.key}`);
    }
    byUuid.set(node.nodeExecuteUuid, node);
    keys.add(node.key);
  }

  return byUuid;
}

// The execution's own log id, stable across requests, shaped like a request logid.
function executionLogid(executeId: string, createTime: number): string {
  const stamp = new Date((createTime + 8 * 3600) * 1000).toISOString().replace(/\D/g, '').slice(0, 14);
  const hex = createHash('sha256').update(executeId).digest('hex').slice(0, 20).toUpperCase();
  return stamp + hex;
}
