import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { parseExecutionList, readExecutionListText } from '../src/batch/input-list.js';
import { UsageError } from '../src/coze/errors.js';

// Parsing of the --from list: format detection, the three formats, bad lines with their line
// numbers, and duplicates.

const WF = '7350000000000000001';
const EX1 = '7431000000000000001';
const EX2 = '7431000000000000002';
const EX3 = '7431000000000000003';

describe('plain lines', () => {
  it('whitespace, commas and comments', () => {
    const text = ['# nightly list', '', `${WF} ${EX1}`, `${WF},${EX2}`, `  ${WF}\t ,  ${EX3}   # the third`, ''].join('\n');
    const list = parseExecutionList(text);

    expect(list.format).toBe('lines');
    expect(list.targets).toEqual([
      { workflowId: WF, executeId: EX1 },
      { workflowId: WF, executeId: EX2 },
      { workflowId: WF, executeId: EX3 },
    ]);
    expect(list.badLines).toEqual([]);
    expect(list.duplicateLines).toEqual([]);
  });

  it('bad lines keep their numbers', () => {
    const text = [`${WF} ${EX1}`, 'abc 123', `${WF}`, `${WF} ${EX2} 99`, `${WF} 7431-2`, `${WF} ${EX2}`].join('\n');
    const list = parseExecutionList(text);

    expect(list.targets).toEqual([
      { workflowId: WF, executeId: EX1 },
      { workflowId: WF, executeId: EX2 },
    ]);
    expect(list.badLines.map((bad) => bad.line)).toEqual([2, 3, 4, 5]);
    expect(list.badLines[0]!.reason).toContain('workflow_id "abc"');
    expect(list.badLines[0]!.text).toBe('abc 123');
    expect(list.badLines[1]!.reason).toContain('found 1');
    expect(list.badLines[2]!.reason).toContain('found 3');
    expect(list.badLines[3]!.reason).toContain('execute_id "7431-2"');
  });

  it('duplicates run once', () => {
    const list = parseExecutionList([`${WF} ${EX1}`, `${WF} ${EX2}`, `${WF},${EX1}`, `${WF} ${EX1}`].join('\n'));

    expect(list.targets).toHaveLength(2);
    expect(list.duplicateLines).toEqual([3, 4]);
    expect(list.badLines).toEqual([]);
  });

  it('header line is skipped', () => {
    const list = parseExecutionList(['workflow_id execute_id', `${WF} ${EX1}`].join('\n'));

    expect(list.format).toBe('lines');
    expect(list.targets).toEqual([{ workflowId: WF, executeId: EX1 }]);
    expect(list.badLines).toEqual([]);
  });

  it('header in the other order swaps the columns', () => {
    const list = parseExecutionList(['execute_id  workflow_id', `${EX1} ${WF}`, `${EX2},${WF}`, `${EX1}`].join('\n'));

    expect(list.format).toBe('lines');
    expect(list.targets).toEqual([
      { workflowId: WF, executeId: EX1 },
      { workflowId: WF, executeId: EX2 },
    ]);
    expect(list.badLines).toEqual([{ line: 4, reason: 'expected 2 fields "execute_id workflow_id", found 1', text: EX1 }]);
  });

  it('a # comment in a CSV list is named as such', () => {
    const list = parseExecutionList(['workflow_id,execute_id', `${WF},${EX1}   # first run`, `${WF},${EX2}`].join('\n'));

    expect(list.format).toBe('csv');
    expect(list.targets).toEqual([{ workflowId: WF, executeId: EX2 }]);
    expect(list.badLines.map((bad) => [bad.line, bad.reason])).toEqual([
      [2, `execute_id "${EX1}   # first run" is not an id of 1 to 32 digits; with a comma-separated header this list is read as CSV, where # starts no comment`],
    ]);
  });

  it('CRLF and byte order mark', () => {
    const list = parseExecutionList(`\uFEFF${WF} ${EX1}\r\n${WF} ${EX2}\r\n`);

    expect(list.targets.map((target) => target.executeId)).toEqual([EX1, EX2]);
    expect(list.badLines).toEqual([]);
  });

  it('ids longer than 32 digits rejected', () => {
    const list = parseExecutionList(`${WF} ${'1'.repeat(33)}`);

    expect(list.targets).toEqual([]);
    expect(list.badLines).toHaveLength(1);
    expect(list.badLines[0]!.reason).toContain('1 to 32 digits');
  });

  it('empty input has no targets', () => {
    const list = parseExecutionList('# only a comment\n\n');

    expect(list.format).toBe('lines');
    expect(list.targets).toEqual([]);
    expect(list.badLines).toEqual([]);
  });

  it('long bad line is cut in messages', () => {
    const list = parseExecutionList(`${'x'.repeat(500)} ${EX1}`);

    expect(list.badLines[0]!.text.length).toBeLessThanOrEqual(201);
  });
});

describe('CSV', () => {
  it('header names columns anywhere', () => {
    const text = ['name,execute_id,workflow_id,note', `first,${EX1},${WF},ok`, `"second, with comma",${EX2},${WF},"say ""hi"""`].join('\n');
    const list = parseExecutionList(text);

    expect(list.format).toBe('csv');
    expect(list.targets).toEqual([
      { workflowId: WF, executeId: EX1 },
      { workflowId: WF, executeId: EX2 },
    ]);
    expect(list.badLines).toEqual([]);
  });

  it('quoted ids and header', () => {
    const list = parseExecutionList([`"workflow_id","execute_id"`, `"${WF}","${EX1}"`, ` ${WF} , ${EX2} `].join('\n'));

    expect(list.format).toBe('csv');
    expect(list.targets.map((target) => target.executeId)).toEqual([EX1, EX2]);
  });

  it('quoted line break keeps line numbers', () => {
    const text = ['workflow_id,execute_id,note', `${WF},${EX1},"two`, 'lines"', `${WF},bad,x`, `${WF},${EX2},"a"b`].join('\n');
    const list = parseExecutionList(text);

    expect(list.targets).toEqual([{ workflowId: WF, executeId: EX1 }]);
    expect(list.badLines.map((bad) => bad.line)).toEqual([4, 5]);
    expect(list.badLines[0]!.reason).toContain('execute_id "bad"');
    expect(list.badLines[1]!.reason).toContain('after a closing quote');
  });

  it('missing value and blank lines', () => {
    const text = ['workflow_id,execute_id', '', `${WF}`, '# not skipped', `${WF},`, `${WF},${EX3}`].join('\n');
    const list = parseExecutionList(text);

    expect(list.targets).toEqual([{ workflowId: WF, executeId: EX3 }]);
    expect(list.badLines.map((bad) => [bad.line, bad.reason])).toEqual([
      [3, 'missing execute_id'],
      [4, 'missing execute_id; with a comma-separated header this list is read as CSV, where # starts no comment'],
      [5, 'missing execute_id'],
    ]);
  });

  it('row starting with # is data', () => {
    const named = parseExecutionList(['# exported list', 'name,execute_id,workflow_id', `#1 nightly,${EX1},${WF}`].join('\n'));
    const commented = parseExecutionList(['workflow_id,execute_id', `#${WF},${EX2}`].join('\n'));

    expect(named.format).toBe('csv');
    expect(named.targets).toEqual([{ workflowId: WF, executeId: EX1 }]);
    expect(named.badLines).toEqual([]);
    expect(commented.targets).toEqual([]);
    expect(commented.badLines.map((bad) => bad.line)).toEqual([2]);
    expect(commented.badLines[0]!.reason).toContain('where # starts no comment');
  });

  it('unterminated quote is reported', () => {
    const list = parseExecutionList(['workflow_id,execute_id', `${WF},"${EX1}`, `${WF},${EX2}`].join('\n'));

    expect(list.targets).toEqual([]);
    expect(list.badLines).toHaveLength(1);
    expect(list.badLines[0]!.line).toBe(2);
    expect(list.badLines[0]!.reason).toBe('unterminated quoted field');
  });
});

describe('JSON Lines', () => {
  it('string ids and extra keys', () => {
    const text = [
      JSON.stringify({ workflow_id: WF, execute_id: EX1, note: 'x' }),
      '',
      `{"execute_id": "${EX2}", "workflow_id": "${WF}"}`,
    ].join('\n');
    const list = parseExecutionList(text);

    expect(list.format).toBe('jsonl');
    expect(list.targets).toEqual([
      { workflowId: WF, executeId: EX1 },
      { workflowId: WF, executeId: EX2 },
    ]);
  });

  it('safe integer ids accepted', () => {
    const list = parseExecutionList(`{"workflow_id": 7350, "execute_id": 9007199254740991}`);

    expect(list.targets).toEqual([{ workflowId: '7350', executeId: '9007199254740991' }]);
    expect(list.badLines).toEqual([]);
  });

  it('unsafe number ids rejected', () => {
    // 7431000000000000001 parses to 7431000000000000000: the last digit is already gone.
    const list = parseExecutionList(`{"workflow_id": "${WF}", "execute_id": 7431000000000000001}`);

    expect(list.targets).toEqual([]);
    expect(list.badLines).toHaveLength(1);
    expect(list.badLines[0]!.reason).toContain('beyond 2^53');
    expect(list.badLines[0]!.reason).toContain('string');
  });

  it('bad lines with reasons', () => {
    const text = [
      `{"workflow_id": "${WF}", "execute_id": "${EX1}"}`,
      '{"workflow_id": ',
      '[1, 2]',
      `{"workflow_id": "${WF}"}`,
      `{"workflow_id": "${WF}", "execute_id": -5}`,
      `{"workflow_id": "${WF}", "execute_id": 1.5}`,
      `{"workflow_id": "${WF}", "execute_id": {"id": 1}}`,
      `{"workflow_id": "${WF}", "execute_id": "74x"}`,
    ].join('\n');
    const list = parseExecutionList(text);

    expect(list.targets).toHaveLength(1);
    expect(list.badLines.map((bad) => bad.line)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(list.badLines[0]!.reason).toContain('invalid JSON');
    expect(list.badLines[1]!.reason).toContain('JSON object');
    expect(list.badLines[2]!.reason).toBe('missing execute_id');
    expect(list.badLines[3]!.reason).toContain('is not an id');
    expect(list.badLines[4]!.reason).toContain('is not an id');
    expect(list.badLines[5]!.reason).toContain('string of digits');
    expect(list.badLines[6]!.reason).toContain('execute_id "74x"');
  });

  it('comment before first object', () => {
    const list = parseExecutionList(['# exported by a script', `{"workflow_id": "${WF}", "execute_id": "${EX1}"}`].join('\n'));

    expect(list.format).toBe('jsonl');
    expect(list.targets).toHaveLength(1);
  });
});

describe('--from source', () => {
  it('empty path is a usage error', async () => {
    const read = readExecutionListText('', new PassThrough());

    await expect(read).rejects.toBeInstanceOf(UsageError);
    await expect(readExecutionListText('  ', new PassThrough())).rejects.toThrow('Invalid --from "  ": name a file, or - for standard input.');
  });
});
