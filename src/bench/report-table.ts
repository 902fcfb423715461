import type { ReportRow } from './report-rows.js';

const COLUMNS: readonly { title: string; value: (row: ReportRow) => string }[] = [
  { title: 'Scenario', value: (row) => row.scenario },
  { title: 'Measure', value: (row) => row.measure },
  { title: 'Limit / baseline', value: (row) => row.reference },
  { title: 'Median', value: (row) => row.median },
  { title: 'Ratio', value: (row) => row.ratio },
  { title: 'Target', value: (row) => row.target },
  { title: 'Result', value: (row) => row.verdict },
];

/** Formats the rows as a plain-text table with aligned columns, for a terminal. */
export function formatTextTable(rows: readonly ReportRow[]): string {
  const cells = [COLUMNS.map((column) => column.title), ...rows.map((row) => COLUMNS.map((column) => column.value(row)))];
  const widths = COLUMNS.map((_, index) => Math.max(...cells.map((line) => displayWidth(line[index] ?? ''))));
  const formatLine = (line: string[]): string => line.map((cell, index) => pad(cell, widths[index] ?? 0)).join('  ').trimEnd();

  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  const [header, ...body] = cells;
  return [formatLine(header ?? []), rule, ...body.map(formatLine)].join('\n');
}

/** Formats the rows as a Markdown table, with each repetition's value in its own column. */
export function formatMarkdownTable(rows: readonly ReportRow[]): string {
  const titles = [...COLUMNS.map((column) => column.title), 'Runs'];
  const lines = [
    `| ${titles.join(' | ')} |`,
    `|${titles.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${[...COLUMNS.map((column) => column.value(row)), row.runs].map(escapeCell).join(' | ')} |`),
  ];
  return lines.join('\n');
}

function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

/** Counts CJK characters as two columns, as terminals draw them. */
function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += /[\u3000-\u9fff\uff00-\uffef]/.test(char) ? 2 : 1;
  return width;
}
