import { readFile } from 'node:fs/promises';

import type { ExecutionTarget } from '../archive/archive-execution.js';
import { isDigitId } from '../archive/file-names.js';
import { UsageError } from '../coze/errors.js';
import { parseCsvList } from './csv-list.js';
import { parseJsonLinesList } from './json-lines-list.js';
import { isIgnorable, shownText, type ListRecord } from './list-record.js';

export type ExecutionListFormat = 'lines' | 'csv' | 'jsonl';

/** A line of the list that names no usable execution. The valid lines still run. */
export interface BadLine {
  /** 1-based line number in the input. A CSV record that spans lines gives its first line. */
  line: number;
  reason: string;
  /** The line as written, cut to 200 characters. */
  text: string;
}

export interface ExecutionList {
  format: ExecutionListFormat;
  /** Valid executions in input order, each pair once. */
  targets: ExecutionTarget[];
  badLines: BadLine[];
  /** Line numbers of pairs listed again after their first line. Each pair runs once. */
  duplicateLines: number[];
}

/** Plain lines may start with this header, which is skipped; in the other order, it swaps the columns. */
const PLAIN_HEADER = ['workflow_id', 'execute_id'];

/**
 * Parses a list of executions, detecting its format from the first line that is neither
 * blank nor a `#` comment. A `{` there starts JSON Lines, and a comma-separated header naming
 * `workflow_id` and `execute_id` starts CSV. Anything else is plain `workflow_id execute_id`
 * lines, separated by whitespace or a comma.
 */
export function parseExecutionList(text: string): ExecutionList {
  const lines = splitLines(text.replace(/^\uFEFF/, ''));
  const format = detectFormat(lines);

  let records: ListRecord[];
  if (format === 'jsonl') records = parseJsonLinesList(lines);
  else if (format === 'csv') records = parseCsvList(lines);
  else records = parsePlainList(lines);

  return collectTargets(format, records);
}

/** Reads the text of `--from`: a file path, or `-` for standard input. */
export async function readExecutionListText(source: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (source.trim() === '') throw new UsageError(`Invalid --from "${source}": name a file, or - for standard input.`);
  if (source === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks).toString('utf8');
  }

  try {
    return await readFile(source, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`Cannot read --from ${source}: ${code}. Pass a readable file, or - for standard input.`);
  }
}

function splitLines(text: string): string[] {
  const lines = text.split(/\r\n|\n|\r/);
  // A final newline ends the last line and does not start an empty one.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function detectFormat(lines: readonly string[]): ExecutionListFormat {
  const first = lines.find((line) => !isIgnorable(line));
  if (first === undefined) return 'lines';

  if (first.trim().startsWith('{')) return 'jsonl';

  const names = first.split(',').map((name) => name.trim().replace(/^"|"$/g, '').toLowerCase());
  if (names.includes('workflow_id') && names.includes('execute_id')) return 'csv';
  return 'lines';
}

function parsePlainList(lines: readonly string[]): ListRecord[] {
  const records: ListRecord[] = [];
  let headerAllowed = true;
  let executeIdFirst = false;

  lines.forEach((text, index) => {
    const content = text.split('#')[0]!.trim();
    if (content === '') return;

    const fields = content.split(/[\s,]+/).filter((field) => field !== '');
    const names = fields.join(' ').toLowerCase();
    const line = index + 1;
    if (headerAllowed && names === PLAIN_HEADER.join(' ')) {
      headerAllowed = false;
      return;
    }
    // A header that names the columns the other way round sets their order, as a CSV header does.
    if (headerAllowed && names === [...PLAIN_HEADER].reverse().join(' ')) {
      headerAllowed = false;
      executeIdFirst = true;
      return;
    }
    headerAllowed = false;

    if (fields.length !== 2) {
      const expected = executeIdFirst ? 'execute_id workflow_id' : 'workflow_id execute_id';
      records.push({ line, text, problem: `expected 2 fields "${expected}", found ${fields.length}` });
      return;
    }
    const [workflowId, executeId] = executeIdFirst ? [fields[1]!, fields[0]!] : [fields[0]!, fields[1]!];
    records.push({ line, text, workflowId, executeId });
  });
  return records;
}

/** Checks the ids of every record and keeps each valid pair once. */
function collectTargets(format: ExecutionListFormat, records: readonly ListRecord[]): ExecutionList {
  const list: ExecutionList = { format, targets: [], badLines: [], duplicateLines: [] };
  const seen = new Set<string>();

  for (const record of records) {
    let problem = record.problem ?? idProblem(record);
    // Plain lines take # comments and CSV lines do not, so a list with a CSV header reads them as part of an id.
    if (problem !== undefined && format === 'csv' && `${record.workflowId ?? ''}${record.executeId ?? ''}`.includes('#')) {
      problem += '; with a comma-separated header this list is read as CSV, where # starts no comment';
    }
    if (problem !== undefined) {
      list.badLines.push({ line: record.line, reason: problem, text: shownText(record.text) });
      continue;
    }

    const key = `${record.workflowId}/${record.executeId}`;
    if (seen.has(key)) {
      list.duplicateLines.push(record.line);
      continue;
    }
    seen.add(key);
    list.targets.push({ workflowId: record.workflowId!, executeId: record.executeId! });
  }
  return list;
}

// Ids become folder names, so only digit strings are accepted.
function idProblem(record: ListRecord): string | undefined {
  if (record.workflowId === undefined || record.workflowId === '') return 'missing workflow_id';
  if (record.executeId === undefined || record.executeId === '') return 'missing execute_id';
  if (!isDigitId(record.workflowId)) return `workflow_id "${shownText(record.workflowId)}" is not an id of 1 to 32 digits`;
  if (!isDigitId(record.executeId)) return `execute_id "${shownText(record.executeId)}" is not an id of 1 to 32 digits`;
  return undefined;
}
