/** One record read from an execution list, before its ids are checked. */
export interface ListRecord {
  /** 1-based line number where the record starts. */
  line: number;
  text: string;
  workflowId?: string;
  executeId?: string;
  /** Reason the record could not be read, when it could not. */
  problem?: string;
}

const MAX_SHOWN_TEXT = 200;

/** Returns true for a line that carries nothing: blank, or a `#` comment. */
export function isIgnorable(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === '' || trimmed.startsWith('#');
}

/** Cuts input text for messages, so one huge line cannot flood a log. */
export function shownText(text: string): string {
  return text.length > MAX_SHOWN_TEXT ? `${text.slice(0, MAX_SHOWN_TEXT)}…` : text;
}
