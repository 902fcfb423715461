import { CozeRequestError, OutputWriteError } from '../coze/errors.js';
import type { PlannedEntry } from './discover-entries.js';
import type { EntryError, ManifestEntry } from './manifest.js';

/** Starts a manifest entry for a planned output; the caller fills in the outcome. */
export function blankEntry(planned: PlannedEntry): ManifestEntry {
  const entry: ManifestEntry = {
    node_id: planned.nodeId,
    title: planned.title,
    loop_index: planned.loopIndex,
    batch_index: planned.batchIndex,
    source: planned.source,
    status: 'pending',
    file: null,
    bytes: null,
    sha256: null,
    is_finish: planned.isFinish,
    possibly_incomplete: false,
    incomplete_reasons: [],
    attempts: 0,
  };
  if (planned.nodeExecuteUuid !== undefined) entry.node_execute_uuid = planned.nodeExecuteUuid;
  if (planned.subExecuteId !== undefined) entry.sub_execute_id = planned.subExecuteId;
  return entry;
}

/** Extracts the error fields a manifest records: HTTP status, Coze code and msg, logid. */
export function describeError(error: unknown): EntryError {
  if (error instanceof CozeRequestError) {
    const described: EntryError = { message: error.message, kind: error.kind };
    if (error.httpStatus !== undefined) described.http_status = error.httpStatus;
    if (error.code !== undefined) described.code = error.code;
    if (error.cozeMsg !== undefined) described.msg = error.cozeMsg;
    if (error.logid !== undefined) described.logid = error.logid;
    return described;
  }
  if (error instanceof OutputWriteError) return { message: error.message, kind: 'write_failed' };
  return { message: error instanceof Error ? error.message : String(error) };
}

/**
 * Renames an error's fields for a log line: pino's own `msg` is the line's message, so
 * Coze's `msg` goes to `cozeMsg` and the error text to `err`, keeping every key unique.
 */
export function errorLogFields(error: EntryError): Record<string, unknown> {
  const { msg, message, ...rest } = error;
  return { ...rest, err: message, cozeMsg: msg };
}
