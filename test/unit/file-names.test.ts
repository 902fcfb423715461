import path from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  isDigitId,
  outputFileName,
  resolveInside,
  sanitizeComponent,
  truncateUtf8,
  UniqueNames,
} from '../../src/archive/file-names.js';

/** `writeFileAtomic` appends `.tmp-` and 8 hex digits to the final name. */
const TEMP_SUFFIX = '.tmp-0123abcd';
const MAX_NAME_BYTES = 255;

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** True when the text survives a UTF-8 round trip, which a lone surrogate does not. */
function isWellFormedUtf16(text: string): boolean {
  return Buffer.from(text, 'utf8').toString('utf8') === text;
}

describe('sanitizeComponent', () => {
  it.each([
    ['slash', 'a/b', 'a_b'],
    ['backslash', 'a\\b', 'a_b'],
    ['dot dot', '..', '__'],
    ['single dot', '.', '_'],
    ['three dots', '...', '___'],
    ['leading dot', '.hidden', '_hidden'],
    ['leading spaces and dot', '  .env', '_env'],
    ['less than', 'a<b', 'a_b'],
    ['greater than', 'a>b', 'a_b'],
    ['colon', 'a:b', 'a_b'],
    ['double quote', 'a"b', 'a_b'],
    ['pipe', 'a|b', 'a_b'],
    ['question mark', 'a?b', 'a_b'],
    ['asterisk', 'a*b', 'a_b'],
    ['control characters', 'a\u0000b\tc\nd\u001fe\u007ff\u0085g', 'a_b_c_d_e_f_g'],
    ['line and paragraph separators', '第一行\u2028第二行\u2029完', '第一行_第二行_完'],
    ['bidirectional controls', 'invoice\u202Etxt.exe\u202C\u2066x\u2069\u200Fy\u200E', 'invoice_txt.exe__x__y_'],
    ['trailing dots and spaces', 'title. . ', 'title'],
    ['trailing ideographic space', '标题\u3000', '标题'],
    ['path traversal', '../../etc/passwd', '___.._etc_passwd'],
    ['Chinese kept', '输出节点 1', '输出节点 1'],
  ])('%s', (_label, raw, expected) => {
    expect(sanitizeComponent(raw, 'fallback')).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['spaces only', '   '],
    ['ideographic spaces only', '\u3000\u3000'],
  ])('%s uses the fallback', (_label, raw) => {
    expect(sanitizeComponent(raw, 'fallback')).toBe('fallback');
  });

  it('space then dots', () => {
    expect(sanitizeComponent(' ..', 'fallback')).toBe('__');
  });

  it.each([
    ['CON', 'CON_'],
    ['con', 'con_'],
    ['Prn', 'Prn_'],
    ['AUX', 'AUX_'],
    ['nul.txt', 'nul_.txt'],
    ['NUL.tar.gz', 'NUL_.tar.gz'],
    ['COM1', 'COM1_'],
    ['com9.log', 'com9_.log'],
    ['LPT1.json', 'LPT1_.json'],
    ['lpt1.JSON', 'lpt1_.JSON'],
    ['CON.', 'CON_'],
    ['CON ', 'CON_'],
  ])('reserved Windows name %j', (raw, expected) => {
    expect(sanitizeComponent(raw, 'fallback')).toBe(expected);
  });

  it.each(['CONSOLE', 'com10', 'LPT', 'nullable.txt', 'xCON'])('ordinary name %j unchanged', (raw) => {
    expect(sanitizeComponent(raw, 'fallback')).toBe(raw);
  });

  it('300 ASCII characters cut to 255 bytes', () => {
    expect(sanitizeComponent('a'.repeat(300), 'fallback')).toBe('a'.repeat(255));
  });

  it('cut never leaves a trailing dot', () => {
    expect(sanitizeComponent(`${'a'.repeat(9)}.bbbb`, 'fallback', 10)).toBe('a'.repeat(9));
  });

  it('Chinese and emoji cut on a code point', () => {
    const name = sanitizeComponent(`${'长'.repeat(3)}😀😀`, 'fallback', 12);

    expect(name).toBe('长长长');
    expect(isWellFormedUtf16(name)).toBe(true);
  });

  it('reserved name stays within maxBytes', () => {
    const name = sanitizeComponent('CON', 'fallback', 3);

    expect(utf8Bytes(name)).toBeLessThanOrEqual(3);
    expect(name.toUpperCase()).not.toBe('CON');
  });

  it('lone surrogate replaced', () => {
    // JSON text may carry "\ud800" escapes, which decode to lone surrogates.
    const name = sanitizeComponent('a\ud800b\udc00', 'fallback');

    expect(isWellFormedUtf16(name)).toBe(true);
    expect(name).toBe('a_b_');
  });

  it('decomposed accents normalised to NFC', () => {
    expect(sanitizeComponent('Cafe\u0301', 'fallback')).toBe('Caf\u00e9');
  });
});

describe('truncateUtf8', () => {
  it.each([
    ['abc', 2, 'ab'],
    ['abc', 3, 'abc'],
    ['abc', 0, ''],
    ['中文', 4, '中'],
    ['中文', 5, '中'],
    ['中文', 6, '中文'],
    ['a😀', 4, 'a'],
    ['a😀', 5, 'a😀'],
    ['😀😀', 7, '😀'],
    ['\u00e9\u00e9', 3, '\u00e9'],
  ])('%j to %i bytes', (text, maxBytes, expected) => {
    expect(truncateUtf8(text, maxBytes)).toBe(expected);
  });
});

describe('outputFileName', () => {
  const uuid = '7f3a9c2e-1b4d-4e8f-9a0b-123456789abc';

  it('title, node id and uuid prefix', () => {
    expect(outputFileName({ title: 'Summary', nodeId: '100001', nodeExecuteUuid: uuid })).toBe(
      'Summary.100001.7f3a9c2e.txt',
    );
  });

  it('loop and batch indexes', () => {
    expect(
      outputFileName({ title: 'Item', nodeId: '100001', loopIndex: 2, batchIndex: 0, nodeExecuteUuid: uuid }),
    ).toBe('Item.100001.loop2.batch0.7f3a9c2e.txt');
  });

  it('custom extension', () => {
    expect(outputFileName({ title: 'Output' }, '.json')).toBe('Output.json');
  });

  it('empty title falls back to the node id', () => {
    expect(outputFileName({ title: '', nodeId: '100001' })).toBe('100001.100001.txt');
  });

  it('empty title with hostile node id', () => {
    // The node id is the fallback name here, so it must be sanitised like the title.
    expect(outputFileName({ title: '', nodeId: 'x/y' })).toBe('x_y.x_y.txt');
  });

  it('empty title without node id', () => {
    expect(outputFileName({ title: '' })).toBe('output.txt');
  });

  it('uuid without letters or digits', () => {
    expect(outputFileName({ title: 'A', nodeExecuteUuid: '---' })).toBe('A.run.txt');
  });

  it('reserved title', () => {
    expect(outputFileName({ title: 'con', nodeId: '1' })).toBe('con_.1.txt');
  });

  it('hostile node id sanitised', () => {
    expect(outputFileName({ title: 'A', nodeId: '../1' })).toBe('A.___1.txt');
  });

  it('300 ASCII title leaves room for temp suffix', () => {
    const name = outputFileName({ title: 'a'.repeat(300), nodeId: '7512345678901234567', nodeExecuteUuid: uuid });
    const suffix = '.7512345678901234567.7f3a9c2e.txt';

    expect(name).toBe('a'.repeat(255 - 16 - 6 - suffix.length) + suffix);
    expect(utf8Bytes(`${name}~99999${TEMP_SUFFIX}`)).toBeLessThanOrEqual(MAX_NAME_BYTES);
  });

  it('Chinese and emoji title cut whole', () => {
    const title = `${'长'.repeat(70)}😀😀${'长'.repeat(30)}`;
    const name = outputFileName({ title, nodeId: '100001', nodeExecuteUuid: uuid });

    expect(name).toBe(`${'长'.repeat(70)}.100001.7f3a9c2e.txt`);
    expect(isWellFormedUtf16(name)).toBe(true);
    expect(utf8Bytes(`${name}~99999${TEMP_SUFFIX}`)).toBeLessThanOrEqual(MAX_NAME_BYTES);
  });

  it('100 Chinese characters then emoji', () => {
    const name = outputFileName({ title: `${'长'.repeat(100)}😀`, nodeId: '100001', nodeExecuteUuid: uuid });

    expect(name).toBe(`${'长'.repeat(71)}.100001.7f3a9c2e.txt`);
    expect(utf8Bytes(`${name}${TEMP_SUFFIX}`)).toBeLessThanOrEqual(MAX_NAME_BYTES);
  });

  it('emoji-only title within limit', () => {
    const name = outputFileName({ title: '😀'.repeat(80), nodeId: '100001', nodeExecuteUuid: uuid });

    expect(name).toBe(`${'😀'.repeat(53)}.100001.7f3a9c2e.txt`);
    expect(isWellFormedUtf16(name)).toBe(true);
  });
});

describe('UniqueNames', () => {
  it('repeated name gets counters', () => {
    const names = new UniqueNames();

    expect(names.claim('a.txt')).toBe('a.txt');
    expect(names.claim('a.txt')).toBe('a~2.txt');
    expect(names.claim('a.txt')).toBe('a~3.txt');
  });

  it('titles colliding after sanitising', () => {
    const names = new UniqueNames();
    const first = names.claim(outputFileName({ title: 'a/b' }));
    const second = names.claim(outputFileName({ title: 'a:b' }));

    expect(first).toBe('a_b.txt');
    expect(second).toBe('a_b~2.txt');
  });

  it('names differing only in case', () => {
    const names = new UniqueNames();

    expect(names.claim('Report.txt')).toBe('Report.txt');
    expect(names.claim('report.txt')).toBe('report~2.txt');
    expect(names.claim('REPORT.TXT')).toBe('REPORT~3.TXT');
  });

  it('Chinese titles differing in Latin case', () => {
    const names = new UniqueNames();

    expect(names.claim('总结A.txt')).toBe('总结A.txt');
    expect(names.claim('总结a.txt')).toBe('总结a~2.txt');
  });

  it('accented letters differing in case', () => {
    const names = new UniqueNames();

    expect(names.claim('\u00c9t\u00e9.txt')).toBe('\u00c9t\u00e9.txt');
    expect(names.claim('\u00e9t\u00e9.txt')).toBe('\u00e9t\u00e9~2.txt');
  });

  it('Greek final sigma differing in case', () => {
    // Unicode case folding maps final ς to σ, so a file system that compares folded names
    // treats them as one file.
    const names = new UniqueNames();

    expect(names.claim('ΟΔΟΣ.txt')).toBe('ΟΔΟΣ.txt');
    expect(names.claim('οδος.txt')).toBe('οδος~2.txt');
  });

  it('NFD and NFC forms collide', () => {
    const names = new UniqueNames();

    expect(names.claim('\u00e9.txt')).toBe('\u00e9.txt');
    expect(names.claim('e\u0301.txt')).toBe('e\u0301~2.txt');
  });

  it('counter skips names already claimed', () => {
    const names = new UniqueNames();

    expect(names.claim('a~2.txt')).toBe('a~2.txt');
    expect(names.claim('a.txt')).toBe('a.txt');
    expect(names.claim('A.txt')).toBe('A~3.txt');
  });

  it('reserved names count as taken', () => {
    const names = new UniqueNames();
    names.reserve('nodes/Old.txt');

    expect(names.isTaken('NODES/old.TXT')).toBe(true);
    expect(names.isTaken('nodes/new.txt')).toBe(false);
    expect(names.claim('nodes/old.txt')).toBe('nodes/old~2.txt');
  });

  it('name without extension', () => {
    const names = new UniqueNames();
    names.claim('README');

    expect(names.claim('readme')).toBe('readme~2');
  });
});

describe('resolveInside', () => {
  const root = path.resolve('/srv/archive');

  it.each(['../x', 'a/../../x', '..', '/etc/passwd', '/srv/archive-other/x', '/srv'])('rejects %j', (relative) => {
    expect(() => resolveInside(root, relative)).toThrow(RangeError);
  });

  it('rejection names the path', () => {
    expect(() => resolveInside(root, '../x')).toThrow('Path "../x" resolves outside the archive folder /srv/archive');
  });

  it.each([
    ['nodes/sub/a.txt', '/srv/archive/nodes/sub/a.txt'],
    ['a.txt', '/srv/archive/a.txt'],
    ['a/../b.txt', '/srv/archive/b.txt'],
    ['..a', '/srv/archive/..a'],
    ['', '/srv/archive'],
    ['/srv/archive/nodes/a.txt', '/srv/archive/nodes/a.txt'],
  ])('accepts %j', (relative, expected) => {
    expect(resolveInside(root, relative)).toBe(expected);
  });

  it('root with trailing slash', () => {
    expect(resolveInside('/srv/archive/', 'x/y')).toBe('/srv/archive/x/y');
  });

  it('filesystem root as the folder', () => {
    expect(resolveInside('/', 'x/y.txt')).toBe('/x/y.txt');
  });
});

describe('isDigitId', () => {
  it.each([
    ['7512345678901234567', true],
    ['0', true],
    ['1'.repeat(32), true],
    ['1'.repeat(33), false],
    ['', false],
    ['12a', false],
    ['-1', false],
    ['1.5', false],
    [' 12', false],
    ['12\n', false],
    ['１２', false],
    ['../1', false],
  ])('%j is %s', (value, expected) => {
    expect(isDigitId(value)).toBe(expected);
  });
});
