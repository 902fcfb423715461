import { isIgnorable, shownText, type ListRecord } from './list-record.js';

const ID_FIELDS = ['workflow_id', 'execute_id'] as const;

/**
 * Reads a JSON Lines list: one object per line with `workflow_id` and `execute_id`, other
 * keys ignored. Ids should be JSON strings. A JSON number is accepted only while it is a
 * safe integer, because past 2^53 JSON.parse has already rounded it and lost digits.
 */
export function parseJsonLinesList(lines: readonly string[]): ListRecord[] {
  const records: ListRecord[] = [];

  lines.forEach((text, index) => {
    if (isIgnorable(text)) return;
    records.push(readObjectLine(text, index + 1));
  });
  return records;
}

function readObjectLine(text: string, line: number): ListRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { line, text, problem: `invalid JSON: ${(error as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { line, text, problem: 'expected a JSON object with workflow_id and execute_id' };
  }

  const record: ListRecord = { line, text };
  for (const field of ID_FIELDS) {
    const id = readId((value as Record<string, unknown>)[field], field);
    if (typeof id === 'object') return { line, text, problem: id.problem };
    if (field === 'workflow_id') record.workflowId = id;
    else record.executeId = id;
  }
  return record;
}

function readId(value: unknown, field: string): string | { problem: string } {
  if (value === undefined || value === null) return { problem: `missing ${field}` };
  if (typeof value === 'string') return value;

  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return String(value);
    if (Number.isInteger(value) && value > 0) {
      return { problem: `${field} ${value} is a JSON number beyond 2^53 and has lost digits; write it as a string, e.g. "${field}": "7431234567890123456"` };
    }
    return { problem: `${field} ${value} is not an id: ids are digit strings` };
  }
  return { problem: `${field} must be a string of digits, not ${shownText(JSON.stringify(value))}` };
}
