import { readFile } from 'node:fs/promises';
import { z } from 'zod';

import type { IncompleteReason } from './incomplete-flags.js';

export const MANIFEST_FILE = 'manifest.json';
export const EXECUTION_FILE = 'execution.json';
/** Subfolders of an execution folder: outputs of node runs, and outputs found inline in the run history. */
export const NODES_FOLDER = 'nodes';
export const INLINE_FOLDER = 'inline';
export const MANIFEST_VERSION = 1;
/** Starts `stopped` in the manifest of an execution that an error elsewhere in its batch stopped. */
export const RUN_STOPPED_PREFIX = 'run stopped: ';

export type EntryStatus = 'saved' | 'failed' | 'pending' | 'expired';
export type EntrySource = 'execute_nodes' | 'inline';

export interface EntryError {
  message: string;
  kind?: string | undefined;
  http_status?: number | undefined;
  code?: number | undefined;
  msg?: string | undefined;
  logid?: string | undefined;
}

/** One output in the archive: an output-node run, or an inline output of the run history. */
export interface ManifestEntry {
  /**
   * Absent for inline outputs, which have no node run of their own, and for a node run whose
   * `node_execute_status` entry was not shaped as documented.
   */
  node_execute_uuid?: string;
  /** Null for inline outputs, which the run history names by title only, and for such a node run. */
  node_id: string | null;
  /** The `node_execute_status` key or `output` key exactly as Coze sent it. */
  title: string;
  loop_index: number | null;
  batch_index: number | null;
  sub_execute_id?: string;
  source: EntrySource;
  status: EntryStatus;
  /** Path relative to the manifest; null while nothing is saved. */
  file: string | null;
  bytes: number | null;
  sha256: string | null;
  is_finish: boolean | null;
  possibly_incomplete: boolean;
  incomplete_reasons: IncompleteReason[];
  attempts: number;
  /** Why the entry is not saved: the pending reason, or the last error. */
  reason?: string;
  error?: EntryError;
  saved_at?: string;
}

/** Why the run history could not be read: the same fields as an entry's error. */
export type ExecutionError = EntryError;

export interface ExecutionManifest {
  manifest_version: number;
  tool: string;
  workflow_id: string;
  execute_id: string;
  /** `Success`, `Running`, `Fail` or any other value Coze sends; null if run history failed. */
  execute_status: string | null;
  error_code: string | null;
  error_message: string | null;
  create_time: number | null;
  update_time: number | null;
  /** The execution's own log id from the record (`logid`), for Coze support. */
  execution_logid: string | null;
  /** The log id of the run-history request that this archive is based on. */
  run_history_logid: string | null;
  is_output_trimmed: boolean;
  debug_url: string | null;
  /** Raw run-history response, relative to the manifest; null when it could not be read. */
  execution_file: string | null;
  /** SHA-256 in hex of `execution_file` as saved, so that `verify` can check it; null without that file. */
  execution_sha256: string | null;
  started_at: string;
  updated_at: string;
  finished_at: string | null;
  /** True only when every entry is saved and the execution has finished. */
  complete: boolean;
  /** Set when the run history itself could not be read. */
  error?: ExecutionError;
  /** Set when the run stopped early: `interrupted`, or a fatal error such as a full disk. */
  stopped?: string;
  totals: ManifestTotals;
  nodes: ManifestEntry[];
}

export interface ManifestTotals {
  entries: number;
  saved: number;
  failed: number;
  pending: number;
  expired: number;
  flagged: number;
  bytes: number;
}

export function computeTotals(nodes: readonly ManifestEntry[]): ManifestTotals {
  const totals: ManifestTotals = { entries: nodes.length, saved: 0, failed: 0, pending: 0, expired: 0, flagged: 0, bytes: 0 };
  for (const node of nodes) {
    totals[node.status] += 1;
    if (node.possibly_incomplete) totals.flagged += 1;
    if (node.status === 'saved') totals.bytes += node.bytes ?? 0;
  }
  return totals;
}

/**
 * Returns whether `manifest` may set `complete`: every entry saved, the execution finished in
 * Coze, and the run that wrote it finished. A version written mid-run is the last one when
 * the run is killed, so it must not claim what the run never checked.
 */
export function isComplete(manifest: ExecutionManifest): boolean {
  return (
    manifest.finished_at !== null &&
    manifest.error === undefined &&
    manifest.stopped === undefined &&
    manifest.execute_status !== null &&
    manifest.execute_status !== 'Running' &&
    manifest.totals.saved === manifest.totals.entries
  );
}

/** The few fields of an earlier manifest that resume relies on; the rest is rebuilt. */
const previousEntrySchema = z.looseObject({
  node_execute_uuid: z.string().optional(),
  title: z.string(),
  source: z.enum(['execute_nodes', 'inline']),
  status: z.string(),
  file: z.string().nullable(),
  bytes: z.number().nullable(),
  sha256: z.string().nullable(),
  attempts: z.number().optional(),
});
export type PreviousEntry = z.infer<typeof previousEntrySchema>;

const previousManifestSchema = z.looseObject({
  workflow_id: z.string(),
  execute_id: z.string(),
  nodes: z.array(previousEntrySchema),
});

/**
 * Reads an earlier manifest for resume. A missing file means a first run; an unreadable or
 * foreign one is ignored with the reason, and everything is fetched again.
 */
export async function readPreviousManifest(
  manifestPath: string,
  ids: { workflowId: string; executeId: string },
): Promise<{ entries: PreviousEntry[]; fields?: Record<string, unknown>; problem?: string }> {
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [] };
    return { entries: [], problem: `cannot read ${manifestPath}: ${(error as Error).message}` };
  }

  let parsed: ReturnType<typeof previousManifestSchema.safeParse>;
  try {
    parsed = previousManifestSchema.safeParse(JSON.parse(text));
  } catch {
    return { entries: [], problem: `${manifestPath} is not valid JSON` };
  }
  if (!parsed.success) return { entries: [], problem: `${manifestPath} is not a manifest of this tool` };
  if (parsed.data.workflow_id !== ids.workflowId || parsed.data.execute_id !== ids.executeId) {
    return { entries: [], problem: `${manifestPath} belongs to another execution` };
  }
  return { entries: parsed.data.nodes, fields: parsed.data };
}

/**
 * Returns the key that identifies an entry across runs: the uuid, or the title for an inline
 * output and for a node run whose `node_execute_status` entry was not shaped as documented.
 */
export function entryKey(entry: { source: EntrySource; node_execute_uuid?: string | undefined; title: string }): string {
  if (entry.source === 'inline') return `inline:${entry.title}`;
  return entry.node_execute_uuid === undefined ? `invalid:${entry.title}` : `node:${entry.node_execute_uuid}`;
}
