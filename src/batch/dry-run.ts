import type { ExecutionTarget } from '../archive/archive-execution.js';
import { formatDuration } from '../config/duration.js';
import { EXIT_CODES } from '../exit-codes.js';
import { plural, terminalText, type InputReport } from './batch-summary.js';
import { DEFAULT_POLL_SETTINGS } from './wait-for-finish.js';

/**
 * Cost of a run, counted without calling Coze. Coze's free plan allows an account 500 API
 * calls in its lifetime, so a dry run must be free: it counts one run-history call per
 * execution. Node calls are known only once run history lists the output-node runs.
 */
export interface DryRunPlan {
  executions: number;
  /** The first execution read, so that a user can check the columns before any call. */
  first: ExecutionTarget | undefined;
  runHistoryCalls: number;
  waitMs: number;
  input: InputReport;
  /** The API base URL the run would send its requests to. */
  baseUrl: string;
  /** 0 when every line is valid, 1 when some are bad, 2 when none is valid. */
  exitCode: number;
}

export function planDryRun(targets: readonly ExecutionTarget[], input: InputReport, waitMs: number, baseUrl: string): DryRunPlan {
  const executions = targets.length;
  let exitCode: number = EXIT_CODES.ok;
  if (executions === 0 && input.badLines.length > 0) exitCode = EXIT_CODES.usage;
  else if (input.badLines.length > 0) exitCode = EXIT_CODES.failed;
  return { executions, first: targets[0], runHistoryCalls: executions, waitMs, input, baseUrl, exitCode };
}

export function dryRunText(plan: DryRunPlan): string {
  const lines = [
    `Dry run: ${plural(plan.executions, 'execution')}${plan.input.source === null ? '' : ` from ${plan.input.source} (${plan.input.format})`}; no request was sent.`,
    `Cost: ${plural(plan.runHistoryCalls, 'run-history call')} now; node calls unknown until run history is read ` +
      '(one per output-node run not saved by an earlier run).',
  ];
  if (plan.first !== undefined) lines.push(`First: workflow_id ${plan.first.workflowId}, execute_id ${plan.first.executeId}.`);
  lines.push(`Requests would go to ${plan.baseUrl}; every other setting is valid too.`);
  if (plan.executions === 0 && plan.input.badLines.length > 0) lines.push('No valid execution: each line needs a workflow_id and an execute_id of digits.');
  else if (plan.executions === 0) lines.push('The list names no execution, so a run would archive nothing and exit 0.');
  if (plan.waitMs > 0) lines.push(waitNote(plan.waitMs));
  if (plan.input.badLines.length > 0) lines.push(`${plural(plan.input.badLines.length, 'bad input line')}, listed on stderr.`);
  if (plan.input.duplicateLines.length > 0) lines.push(`${plural(plan.input.duplicateLines.length, 'duplicate line')} would be skipped.`);
  return terminalText(lines);
}

export function dryRunDocument(plan: DryRunPlan): Record<string, unknown> {
  return {
    dry_run: true,
    exit_code: plan.exitCode,
    input: {
      source: plan.input.source,
      format: plan.input.format,
      executions: plan.executions,
      first: plan.first === undefined ? null : { workflow_id: plan.first.workflowId, execute_id: plan.first.executeId },
      duplicate_lines: plan.input.duplicateLines,
    },
    bad_lines: plan.input.badLines,
    base_url: plan.baseUrl,
    cost: {
      run_history_calls: plan.runHistoryCalls,
      node_calls: null,
      note: 'node calls are known only after run history is read',
      wait_ms: plan.waitMs,
    },
  };
}

function waitNote(waitMs: number): string {
  const first = formatDuration(DEFAULT_POLL_SETTINGS.initialDelayMs);
  const cap = formatDuration(DEFAULT_POLL_SETTINGS.maxDelayMs);
  return (
    `--wait ${formatDuration(waitMs)}: each execution still running adds one run-history call per poll ` +
    `(every ${first}, doubling up to ${cap}) and one more when it is archived again.`
  );
}
