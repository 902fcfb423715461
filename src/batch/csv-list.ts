import { isIgnorable, type ListRecord } from './list-record.js';

interface CsvRow {
  line: number;
  text: string;
  fields: string[];
  problem?: string;
}

interface RecordRead {
  fields: string[];
  /** Index of the first line after the record. */
  next: number;
  problem?: string;
}

/**
 * Reads a CSV list whose header names `workflow_id` and `execute_id`. Other columns are
 * ignored. Quoted fields follow RFC 4180: `""` is a quote, and commas and line breaks
 * inside quotes belong to the field. Blank lines are skipped, and `#` lines only before the
 * header: a spreadsheet's first column may well start with `#`, and such a row is data.
 */
export function parseCsvList(lines: readonly string[]): ListRecord[] {
  const [header, ...rows] = readRows(lines);
  if (header === undefined) return [];

  const names = header.fields.map((name) => name.trim().toLowerCase());
  const workflowColumn = names.indexOf('workflow_id');
  const executeColumn = names.indexOf('execute_id');

  const records: ListRecord[] = [];
  if (header.problem !== undefined) records.push({ line: header.line, text: header.text, problem: `header: ${header.problem}` });

  for (const row of rows) {
    const record: ListRecord = { line: row.line, text: row.text };
    if (row.problem !== undefined) record.problem = row.problem;

    const workflowId = row.fields[workflowColumn]?.trim();
    const executeId = row.fields[executeColumn]?.trim();
    if (workflowId !== undefined) record.workflowId = workflowId;
    if (executeId !== undefined) record.executeId = executeId;
    records.push(record);
  }
  return records;
}

function readRows(lines: readonly string[]): CsvRow[] {
  const rows: CsvRow[] = [];
  let index = 0;

  while (index < lines.length) {
    const line = lines[index]!;
    if (line.trim() === '' || (rows.length === 0 && isIgnorable(line))) {
      index += 1;
      continue;
    }

    const read = readRecord(lines, index);
    const row: CsvRow = { line: index + 1, text: lines.slice(index, read.next).join('\n'), fields: read.fields };
    if (read.problem !== undefined) row.problem = read.problem;
    rows.push(row);
    index = read.next;
  }
  return rows;
}

/** Reads one record starting at `lines[start]`, continuing onto later lines inside quotes. */
function readRecord(lines: readonly string[], start: number): RecordRead {
  const fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let closedQuote = false;
  let lineIndex = start;
  let line = lines[start]!;
  let position = 0;

  for (;;) {
    if (position >= line.length) {
      if (!inQuotes) {
        fields.push(field);
        return { fields, next: lineIndex + 1 };
      }
      lineIndex += 1;
      if (lineIndex >= lines.length) {
        fields.push(field);
        return { fields, next: lineIndex, problem: 'unterminated quoted field' };
      }
      field += '\n';
      line = lines[lineIndex]!;
      position = 0;
      continue;
    }

    const character = line[position]!;
    position += 1;

    if (inQuotes) {
      if (character !== '"') field += character;
      else if (line[position] === '"') {
        field += '"';
        position += 1;
      } else {
        inQuotes = false;
        closedQuote = true;
      }
      continue;
    }

    if (character === ',') {
      fields.push(field);
      field = '';
      closedQuote = false;
    } else if (character === '"' && !closedQuote && field.trim() === '') {
      inQuotes = true;
      field = '';
    } else if (closedQuote && character.trim() !== '') {
      fields.push(field);
      return { fields, next: lineIndex + 1, problem: 'unexpected text after a closing quote' };
    } else if (!closedQuote) {
      field += character;
    }
  }
}
