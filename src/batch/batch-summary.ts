import { RUN_STOPPED_PREFIX, type ExecutionManifest, type ManifestTotals } from '../archive/manifest.js';
import { formatDuration } from '../config/duration.js';
import { executionSummary } from '../cli/summary.js';
import { escapeControlCharacters } from '../http/redact.js';
import type { BatchRequestStats, BatchResult, ExecutionOutcome } from './batch-runner.js';
import type { BadLine, ExecutionListFormat } from './input-list.js';

/** Source of the executions, for the summary. */
export interface InputReport {
  /** The `--from` path, `-` for standard input, or null for `--workflow-id`/`--execute-id`. */
  source: string | null;
  format: ExecutionListFormat | null;
  badLines: BadLine[];
  duplicateLines: number[];
}

/** Coze codes for an execution that does not exist, or no longer exists. */
const NOT_FOUND_CODES = new Set([4200, 4314]);

/** Detail lines shown per execution under the table before the rest are counted. */
const MAX_DETAIL_LINES = 10;

const COLUMNS = ['workflow_id', 'execute_id', 'status', 'age', 'saved', 'kept', 'failed', 'expired', 'pending', 'flagged', 'bytes', 'error'];

/** Returns a one-word state of an execution: Coze's `execute_status`, or why there is none. */
export function executionState(outcome: ExecutionOutcome): string {
  const m = outcome.manifest;
  if (m === undefined) return outcome.error === undefined ? 'not_started' : 'error';
  if (m.error !== undefined) return m.error.code !== undefined && NOT_FOUND_CODES.has(m.error.code) ? 'not_found' : 'error';
  return m.execute_status ?? 'unknown';
}

/** Formats the summary for a person: a table of executions for stderr, then details of what failed. */
export function summaryTable(result: BatchResult, input: InputReport, expiryWarningMs: number, interrupted = false): string {
  // The CLI prints the error that stopped the run below the table, so rows need not repeat it.
  const runError = result.fatalError instanceof Error ? result.fatalError.message : undefined;
  const rows = result.executions.map((outcome) => tableRow(outcome, runError));
  const widths = COLUMNS.map((name, column) => Math.max(name.length, ...rows.map((row) => row[column]!.length)));
  const format = (cells: readonly string[]): string =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd();

  const lines = [format(COLUMNS), ...rows.map(format)];
  if (result.executions.some((outcome) => outcome.expiryWarning)) {
    lines.push(`! older than ${formatDuration(expiryWarningMs)}: Coze deletes output-node results 24 hours after the run.`);
  }
  if (result.executions.length === 0) lines.push('The list names no execution, so there was nothing to archive.');
  lines.push(...detailLines(result.executions), totalsLine(result, input));
  if (result.requests.overLimitResponses > 0) lines.push(overLimitLine(result.requests));
  if (interrupted && result.fatalError === undefined) {
    lines.push('Interrupted: run the same command again to resume; entries saved so far are kept.');
  }
  return terminalText(lines);
}

/** Builds the `--json` document of a batch: ids as strings, executions in summary order. */
export function summaryDocument(result: BatchResult, input: InputReport, exitCode: number, interrupted = false): Record<string, unknown> {
  return {
    exit_code: exitCode,
    stopped: stopReason(result, interrupted),
    input: { source: input.source, format: input.format, executions: result.executions.length, duplicate_lines: input.duplicateLines },
    bad_lines: input.badLines,
    totals: batchTotals(result),
    requests: {
      sent: result.requests.sent,
      over_limit_responses: result.requests.overLimitResponses,
      qps: result.requests.qps,
      lowest_qps: roundedQps(result.requests.lowestQps),
      lowest_over_limit_qps: result.requests.lowestOverLimitQps === undefined ? null : roundedQps(result.requests.lowestOverLimitQps),
    },
    executions: result.executions.map((outcome) => outcomeDocument(outcome, result)),
  };
}

/** Formats one stderr line per bad input line, with its number and reason. */
export function badLineMessages(input: InputReport): string[] {
  return input.badLines.map((bad) => escapeControlCharacters(`coze-node-outputs: --from ${input.source} line ${bad.line}: ${bad.reason}: ${bad.text}`));
}

/**
 * Joins lines for a terminal. Titles, messages and input lines come from Coze or the user,
 * so control characters are escaped: printed raw, they could start a terminal escape sequence.
 */
export function terminalText(lines: readonly string[]): string {
  return `${lines.map((line) => escapeControlCharacters(line)).join('\n')}\n`;
}

function tableRow(outcome: ExecutionOutcome, runError: string | undefined): string[] {
  const t: Partial<ManifestTotals> = outcome.manifest?.totals ?? {};
  const count = (value: number | undefined): string => (value === undefined ? '-' : String(value));
  return [
    outcome.workflowId,
    outcome.executeId,
    executionState(outcome),
    formatAge(outcome),
    count(t.saved),
    count(outcome.manifest === undefined ? undefined : outcome.keptEntries),
    count(t.failed),
    count(t.expired),
    count(t.pending),
    count(t.flagged),
    count(t.bytes),
    errorCell(outcome, runError),
  ];
}

function formatAge(outcome: ExecutionOutcome): string {
  if (outcome.ageMs === undefined) return '-';
  // A clock slightly behind Coze's gives a negative age; it reads as just started.
  const hours = (Math.max(0, outcome.ageMs) / 3_600_000).toFixed(1);
  return `${hours}h${outcome.expiryWarning ? '!' : ''}`;
}

/** Returns the first thing that went wrong with an execution, with the logid that Coze support requests. */
function errorCell(outcome: ExecutionOutcome, runError: string | undefined): string {
  const m = outcome.manifest;
  if (outcome.error !== undefined) return outcome.error;
  if (m === undefined) return 'not started: the run stopped first';
  if (m.error !== undefined) return withLogid(m.error.message, m.error.logid);
  if (runError !== undefined && (m.stopped === runError || m.stopped === `${RUN_STOPPED_PREFIX}${runError}`)) {
    return "stopped by the run's error below";
  }
  if (m.stopped !== undefined) return `stopped: ${m.stopped}`;

  const failed = m.nodes.find((node) => node.status === 'failed') ?? m.nodes.find((node) => node.status === 'expired');
  if (failed === undefined) return '';
  return withLogid(`${failed.status} ${failed.title}: ${failed.error?.message ?? failed.reason ?? ''}`, failed.error?.logid);
}

/** Counts detail lines by their first word, such as "3 failed, 1 flagged". */
function countKinds(details: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const line of details) {
    const kind = line.slice(0, line.indexOf(':'));
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].map(([kind, count]) => `${count} ${kind}`).join(', ');
}

function detailLines(outcomes: readonly ExecutionOutcome[]): string[] {
  const lines: string[] = [];
  for (const outcome of outcomes) {
    const details = entryDetails(outcome.manifest);
    if (details.length === 0) continue;

    lines.push(`${outcome.executeId}:`);
    lines.push(...details.slice(0, MAX_DETAIL_LINES).map((line) => `  ${line}`));
    const hidden = details.slice(MAX_DETAIL_LINES);
    if (hidden.length > 0) lines.push(`  … and ${hidden.length} more in its manifest.json: ${countKinds(hidden)}`);
  }
  return lines;
}

function entryDetails(m: ExecutionManifest | undefined): string[] {
  const details: string[] = [];
  for (const node of m?.nodes ?? []) {
    if (node.status === 'failed' || node.status === 'expired') {
      // Inline outputs and node runs listed in an unexpected shape have no uuid to show.
      const parts = [node.title, node.node_execute_uuid, node.error?.message ?? node.reason].filter((part) => part !== undefined && part !== '');
      details.push(withLogid(`${node.status}: ${parts.join(' ')}`, node.error?.logid));
    }
    if (node.possibly_incomplete) details.push(`flagged: ${node.file} (${node.incomplete_reasons.join(', ')})`);
  }
  return details;
}

function totalsLine(result: BatchResult, input: InputReport): string {
  const t = batchTotals(result);
  const parts = [
    // "archives": a re-run that could not reach Coze still leaves a complete archive complete.
    `${plural(t.executions, 'execution')}: ${t.complete} ${t.complete === 1 ? 'archive' : 'archives'} complete`,
    `${t.saved} saved${t.kept > 0 ? ` (${t.kept} kept from earlier runs)` : ''}, ${t.failed} failed, ${t.expired} expired, ` +
      `${t.pending} pending, ${t.flagged} flagged, ${t.bytes} bytes`,
  ];
  if (input.badLines.length > 0) parts.push(plural(input.badLines.length, 'bad input line'));
  if (input.duplicateLines.length > 0) parts.push(`${plural(input.duplicateLines.length, 'duplicate line')} skipped`);
  return `${parts.join('; ')} -> ${result.outDir}`;
}

/** Formats the line that counts over-limit responses, with the lowest rate that drew one and the slowest rate they forced. */
function overLimitLine(requests: BatchRequestStats): string {
  // The first over-limit response always cuts the rate and sets this rate, so the fallback never shows.
  const limit = roundedQps(requests.lowestOverLimitQps ?? requests.qps);
  return (
    `Coze answered over-limit ${plural(requests.overLimitResponses, 'time')} in ${plural(requests.sent, 'request')}, ` +
    `so the rate it allows this run is below ${limit} requests per second, the lowest that drew one. ` +
    `The run slowed to ${roundedQps(requests.lowestQps)} at its slowest (--qps ${requests.qps}). A --qps under that limit avoids the pauses.`
  );
}

/** Rounds a rate for people: whole numbers as they are, others to two decimals. */
function roundedQps(qps: number): number {
  return Math.round(qps * 100) / 100;
}

function batchTotals(result: BatchResult) {
  const totals = {
    executions: result.executions.length,
    complete: 0,
    expiry_warnings: 0,
    entries: 0,
    saved: 0,
    /** Saved entries that an earlier run had saved and this one found intact, so it did not fetch them. */
    kept: 0,
    failed: 0,
    expired: 0,
    pending: 0,
    flagged: 0,
    bytes: 0,
  };
  for (const outcome of result.executions) {
    if (outcome.manifest !== undefined) totals.kept += outcome.keptEntries;
    if (outcome.manifest?.complete === true) totals.complete += 1;
    if (outcome.expiryWarning) totals.expiry_warnings += 1;
    const t = outcome.manifest?.totals;
    if (t === undefined) continue;
    for (const key of ['entries', 'saved', 'failed', 'expired', 'pending', 'flagged', 'bytes'] as const) totals[key] += t[key];
  }
  return totals;
}

function outcomeDocument(outcome: ExecutionOutcome, result: BatchResult): Record<string, unknown> {
  const outDir = result.outDir;
  const common = {
    status: executionState(outcome),
    expiry_warning: outcome.expiryWarning,
    age_seconds: outcome.ageMs === undefined ? null : Math.round(outcome.ageMs / 1000),
    polls: outcome.polls,
  };
  if (outcome.manifest === undefined) {
    return { workflow_id: outcome.workflowId, execute_id: outcome.executeId, ...common, error: outcome.error ?? null };
  }

  const summary = executionSummary(outcome.manifest, outDir);
  const totals = { ...summary.totals, kept: outcome.keptEntries };
  const document: Record<string, unknown> = { ...summary, totals, ...common };
  if (outcome.error !== undefined) document['batch_error'] = outcome.error;
  return document;
}

function withLogid(message: string, logid: string | undefined): string {
  return logid === undefined ? message.trim() : `${message.trim()} (logid ${logid})`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Returns `1 line` or `2 lines`. `pluralNoun` is for nouns that do not just add an s. */
export function plural(count: number, noun: string, pluralNoun = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : pluralNoun}`;
}

function stopReason(result: BatchResult, interrupted: boolean): string | null {
  if (result.fatalError !== undefined) return errorMessage(result.fatalError);
  return interrupted ? 'interrupted' : null;
}
