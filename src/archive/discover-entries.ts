import type { InvalidNodeRun } from '../coze/client.js';
import type { RunHistoryRecord } from '../coze/schemas.js';
import type { EntrySource } from './manifest.js';

/** The key of the end node's result in the run history's `output` JSON. */
export const END_NODE_OUTPUT_KEY = 'Output';

/** A key that running executions carry in `output`; it is status, not an output node. */
const NON_OUTPUT_KEYS = new Set(['node_status']);

/** One output the run will archive, found in the run history. */
export interface PlannedEntry {
  key: string;
  source: EntrySource;
  title: string;
  nodeId: string | null;
  nodeExecuteUuid?: string;
  loopIndex: number | null;
  batchIndex: number | null;
  subExecuteId?: string;
  /** `is_finish` from the run history; null for inline outputs. */
  isFinish: boolean | null;
  /** The text itself, for inline outputs, which need no further request. */
  inlineText?: string;
  /** Problems with the run history's entry for this node run, which is then recorded as failed. */
  invalid?: string;
}

/**
 * Lists output-node runs from the values of `node_execute_status`. Its keys are titles, but
 * Coze invents random keys for loop and batch repeats, so only `node_execute_uuid`
 * identifies a run. Duplicates of one uuid are archived once.
 */
export function discoverNodeRuns(record: RunHistoryRecord): PlannedEntry[] {
  const entries: PlannedEntry[] = [];
  const seen = new Set<string>();

  for (const [title, status] of Object.entries(record.node_execute_status ?? {})) {
    if (seen.has(status.node_execute_uuid)) continue;
    seen.add(status.node_execute_uuid);

    const entry: PlannedEntry = {
      key: `node:${status.node_execute_uuid}`,
      source: 'execute_nodes',
      title,
      nodeId: status.node_id,
      nodeExecuteUuid: status.node_execute_uuid,
      loopIndex: status.loop_index ?? null,
      batchIndex: status.batch_index ?? null,
      isFinish: status.is_finish,
    };
    if (status.sub_execute_id !== undefined) entry.subExecuteId = status.sub_execute_id;
    entries.push(entry);
  }
  return entries;
}

/**
 * Plans a node run whose `node_execute_status` entry the client left out as not shaped as
 * documented. Without a trusted `node_execute_uuid` it is keyed by its title.
 * NOTE: an entry whose `node_execute_uuid` is valid while another field is not could still be
 * fetched; it fails here like the others, and its valid fields are not recorded.
 */
export function invalidNodeRunEntry(run: InvalidNodeRun): PlannedEntry {
  return {
    key: `invalid:${run.title}`,
    source: 'execute_nodes',
    title: run.title,
    nodeId: null,
    loopIndex: null,
    batchIndex: null,
    isFinish: null,
    invalid: run.message,
  };
}

/**
 * Lists the outputs carried inline in the run history's `output` JSON: one per output-node
 * title and one for the end node's `Output`. An `output` that is not a JSON object is
 * archived whole as the end node's output, so nothing the execution produced is lost.
 */
export function discoverInlineOutputs(record: RunHistoryRecord): PlannedEntry[] {
  const output = record.output ?? '';
  if (output === '') return [];

  const parsed = parseJsonObject(output);
  if (parsed === undefined) return [inlineEntry(END_NODE_OUTPUT_KEY, output)];

  const entries: PlannedEntry[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (NON_OUTPUT_KEYS.has(key)) continue;

    // NOTE: values are documented as strings; anything else is re-serialised, which loses
    // digits of integers beyond 2^53 inside it. execution.json keeps the original bytes.
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    entries.push(inlineEntry(key, text));
  }
  return entries;
}

function inlineEntry(title: string, text: string): PlannedEntry {
  return {
    key: `inline:${title}`,
    source: 'inline',
    title,
    nodeId: null,
    loopIndex: null,
    batchIndex: null,
    isFinish: null,
    inlineText: text,
  };
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Not JSON: the caller archives the text whole.
  }
  return undefined;
}
