import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { OutputFile } from '../src/archive/output-file.js';
import { HEAP_GROWING_PERCENT, largeOutputEnded, largeOutputStarted, limitHeapGrowth } from '../src/heap-growth.js';
import { Cleanups } from './helpers/cleanups.js';
import { CLI_PATH, PROJECT_ROOT, runNode } from './helpers/run-cli.js';

const cleanups = new Cleanups();
afterEach(async () => {
  vi.restoreAllMocks();
  await cleanups.run();
});

const HEAP_GROWTH_MODULE = pathToFileURL(path.join(PROJECT_ROOT, 'dist', 'heap-growth.js')).href;

/**
 * Keeps three million small objects and prints how many full collections V8 ran meanwhile.
 * The heap grows about fortyfold, so a cap on each step's growth means more collections. The
 * count follows allocation, not the clock, so a busy machine does not change it.
 */
async function fullCollectionsWhileGrowing(capped: boolean): Promise<number> {
  const script =
    (capped ? `const { limitHeapGrowth } = await import(${JSON.stringify(HEAP_GROWTH_MODULE)}); limitHeapGrowth();\n` : '') +
    `const { PerformanceObserver, constants } = await import('node:perf_hooks');\n` +
    `let full = 0;\n` +
    `const observer = new PerformanceObserver((list) => { for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) full += 1; });\n` +
    `observer.observe({ entryTypes: ['gc'] });\n` +
    `const kept = [];\n` +
    `for (let i = 0; i < 3_000_000; i += 1) kept.push({ at: i, list: [i] });\n` +
    `setTimeout(() => { observer.disconnect(); console.log(full, kept.length); }, 20);\n`;
  const { code, stdout, stderr } = await runNode(['--input-type=module', '-e', script]);
  expect(code, stderr).toBe(0);

  const [full, kept] = stdout.trim().split(' ').map(Number);
  expect(kept).toBe(3_000_000);
  return full!;
}

/** Runs the CLI with a module that records every V8 flag set at run time, and returns them. */
async function flagsSetByCli(nodeFlags: readonly string[]): Promise<string[]> {
  const folder = await cleanups.folder('coze-heap-growth-');
  const logFile = path.join(folder, 'flags.log');
  const recorder = path.join(folder, 'record-flags.mjs');
  await writeFile(logFile, '');
  await writeFile(
    recorder,
    `import { appendFileSync } from 'node:fs';\n` +
      `import v8 from 'node:v8';\n` +
      `const original = v8.setFlagsFromString;\n` +
      `v8.setFlagsFromString = (flags) => { appendFileSync(${JSON.stringify(logFile)}, flags + '\\n'); original(flags); };\n`,
  );

  const { code, stdout, stderr } = await runNode([...nodeFlags, '--import', pathToFileURL(recorder).href, CLI_PATH, '--help']);
  expect(code, stderr).toBe(0);
  expect(stdout).toContain('Usage: coze-node-outputs');
  return (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
}

describe('limitHeapGrowth', () => {
  it('makes full collections more frequent', async () => {
    const uncapped = await fullCollectionsWhileGrowing(false);
    const capped = await fullCollectionsWhileGrowing(true);

    // 2 against 4 or 5 on the machine these tests were written on.
    expect(uncapped).toBeGreaterThan(0);
    expect(capped).toBeGreaterThanOrEqual(uncapped + 2);
  });

  it('is set by the CLI at start-up', async () => {
    expect(await flagsSetByCli([])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
  });

  it('keeps the growth Node was given', async () => {
    expect(await flagsSetByCli(['--heap-growing-percent=50'])).toEqual([]);
    expect(limitHeapGrowth(30, ['--heap_growing_percent=70'])).toBe(false);
  });

  it.each([0, -5, 2.5, 1001, Number.NaN])('rejects %s percent', (percent) => {
    expect(() => limitHeapGrowth(percent, [])).toThrow(/whole number of percent from 1 to 1000/);
  });
});

describe('the cap while large outputs stream', () => {
  // The V8 call is replaced, so these tests change nothing in the process that runs them.
  function recordFlags(): string[] {
    const flags: string[] = [];
    vi.spyOn(v8, 'setFlagsFromString').mockImplementation((value: string) => {
      flags.push(value);
    });
    return flags;
  }

  it('is lifted while large outputs stream', () => {
    const flags = recordFlags();

    largeOutputStarted();
    largeOutputEnded();
    expect(flags).toEqual([]);

    expect(limitHeapGrowth(30, [])).toBe(true);
    largeOutputStarted();
    largeOutputStarted();
    largeOutputEnded();
    expect(flags).toEqual(['--heap-growing-percent=30', '--heap-growing-percent=0']);
    largeOutputEnded();
    expect(flags).toEqual(['--heap-growing-percent=30', '--heap-growing-percent=0', '--heap-growing-percent=30']);
  });

  it('returns after a commit, a failed commit and a discard', async () => {
    const folder = await cleanups.folder('coze-heap-growth-');
    const flags = recordFlags();
    limitHeapGrowth(25, []);
    const large = Buffer.alloc(100 * 1024, 0x61);

    const committed = new OutputFile(folder);
    await committed.write(large);
    await committed.commit(path.join(folder, 'out.txt'));

    const failed = new OutputFile(folder);
    await failed.write(large);
    await expect(failed.commit(path.join(folder, 'missing-folder', 'out.txt'))).rejects.toThrow(/ENOENT/);

    const discarded = new OutputFile(folder);
    await discarded.write(large);
    await discarded.discard();

    const small = new OutputFile(folder);
    await small.write(Buffer.from('小'));
    await small.commit(path.join(folder, 'small.txt'));

    const lifted = ['--heap-growing-percent=0', '--heap-growing-percent=25'];
    expect(flags).toEqual(['--heap-growing-percent=25', ...lifted, ...lifted, ...lifted]);
    expect((await readdir(folder)).sort()).toEqual(['out.txt', 'small.txt']);
  });
});
