import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { OutputFile } from '../../src/archive/output-file.js';

const folders: string[] = [];

afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

async function makeFolder(): Promise<string> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'coze-output-file-'));
  folders.push(folder);
  return folder;
}

const MIB = 1024 * 1024;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Three pieces of 700 KiB, each past the in-memory limit. */
function largePieces(): Buffer[] {
  return [0x61, 0x62, 0x63].map((byte) => Buffer.alloc(700 * 1024, byte));
}

describe('OutputFile', () => {
  it('small output touches the disk only on commit', async () => {
    const folder = await makeFolder();
    const output = new OutputFile(folder);

    await output.write(Buffer.from('第一段'));
    await output.write(Buffer.from('，第二段'));
    expect(await readdir(folder)).toEqual([]);
    const digest = await output.commit(path.join(folder, 'out.txt'));

    expect(await readFile(path.join(folder, 'out.txt'), 'utf8')).toBe('第一段，第二段');
    expect(digest).toBe(sha256(Buffer.from('第一段，第二段')));
    expect(output.bytes).toBe(Buffer.byteLength('第一段，第二段'));
  });

  it('large output streams to a temporary file', async () => {
    const folder = await makeFolder();
    const output = new OutputFile(folder);
    const pieces = largePieces();

    for (const piece of pieces) await output.write(piece);
    const during = await readdir(folder);
    const digest = await output.commit(path.join(folder, 'out.txt'));

    expect(during).toHaveLength(1);
    expect(during[0]).toMatch(/^incoming\.tmp-[0-9a-f]{8}$/);
    expect(await readdir(folder)).toEqual(['out.txt']);
    const written = await readFile(path.join(folder, 'out.txt'));
    expect(written.equals(Buffer.concat(pieces))).toBe(true);
    expect(digest).toBe(sha256(Buffer.concat(pieces)));
    expect(output.bytes).toBe(2_100 * 1024);
    expect(output.bytes).toBeGreaterThan(MIB);
  });

  it('large output reaches the disk in steps of 32 KiB', async () => {
    const folder = await makeFolder();
    const output = new OutputFile(folder);
    const reused = Buffer.alloc(1_536 * 1024);
    const sizes = [1, 70 * 1024, 1_536 * 1024, 5, 1_000 * 1024, 500 * 1024 + 117];
    const expected: Buffer[] = [];
    const fileSizes: number[] = [];

    for (const [index, size] of sizes.entries()) {
      const piece = reused.subarray(0, size).fill(0x41 + index);
      expected.push(Buffer.from(piece));
      await output.write(piece);
      const [temporary] = await readdir(folder);
      fileSizes.push(temporary === undefined ? 0 : (await readFile(path.join(folder, temporary))).length);
    }
    const digest = await output.commit(path.join(folder, 'out.txt'));

    // Up to 64 KiB stay in memory. Then steps of 32 KiB go to the file as they fill up.
    const step = 32 * 1024;
    expect(fileSizes).toEqual([0, 2 * step, 50 * step, 50 * step, 81 * step, 97 * step]);
    const written = await readFile(path.join(folder, 'out.txt'));
    expect(written.equals(Buffer.concat(expected))).toBe(true);
    expect(digest).toBe(sha256(Buffer.concat(expected)));
  });

  it('write copies small pieces', async () => {
    const folder = await makeFolder();
    const output = new OutputFile(folder);
    const reused = Buffer.from('第一段');

    await output.write(reused);
    reused.fill(0x78);
    await output.write(reused);
    const digest = await output.commit(path.join(folder, 'out.txt'));

    const expected = Buffer.concat([Buffer.from('第一段'), Buffer.alloc(reused.length, 0x78)]);
    expect((await readFile(path.join(folder, 'out.txt'))).equals(expected)).toBe(true);
    expect(digest).toBe(sha256(expected));
  });

  it('discard removes the temporary file', async () => {
    const folder = await makeFolder();
    const output = new OutputFile(folder);

    for (const piece of largePieces()) await output.write(piece);
    await output.discard();

    expect(await readdir(folder)).toEqual([]);
  });

  it('reset starts the output again', async () => {
    const folder = await makeFolder();
    const output = new OutputFile(folder);

    for (const piece of largePieces()) await output.write(piece);
    await output.reset();
    await output.write(Buffer.from('只有这一段'));
    const digest = await output.commit(path.join(folder, 'out.txt'));

    expect(await readdir(folder)).toEqual(['out.txt']);
    expect(await readFile(path.join(folder, 'out.txt'), 'utf8')).toBe('只有这一段');
    expect(digest).toBe(sha256(Buffer.from('只有这一段')));
    expect(output.bytes).toBe(Buffer.byteLength('只有这一段'));
  });
});
