import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { writeFileAtomic } from '../../src/archive/atomic-write.js';
import { Cleanups } from '../helpers/cleanups.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('writeFileAtomic with pieces of text', () => {
  it('joins pieces into UTF-8 text', async () => {
    const folder = await cleanups.folder('coze-atomic-write-');
    const target = path.join(folder, 'manifest.json');
    const pieces = [
      ...Array.from({ length: 5_000 }, (_, index) => `{"title": "章节${index}", "emoji": "😀"},\n`),
      // Longer than a third of the 32 KiB buffer, so it is written alone.
      '长'.repeat(30_000),
      'ascii after the long piece\n',
      // The longest piece that fits the buffer whole, and the shortest that does not.
      'x'.repeat(10_922),
      'y'.repeat(10_923),
      '',
      '末尾\n',
    ];

    await writeFileAtomic(target, pieces);

    const written = await readFile(target);
    expect(written.equals(Buffer.from(pieces.join(''), 'utf8'))).toBe(true);
    expect(written.length).toBeGreaterThan(200_000);
    expect(await readdir(folder)).toEqual(['manifest.json']);
  });

  it('writes no pieces as empty file', async () => {
    const folder = await cleanups.folder('coze-atomic-write-');
    const target = path.join(folder, 'empty.json');

    await writeFileAtomic(target, []);

    expect((await readFile(target)).length).toBe(0);
    expect(await readdir(folder)).toEqual(['empty.json']);
  });
});
