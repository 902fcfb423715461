import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { benchSizes } from '../src/bench/bench-scenarios.js';
import { GENERATED_END, GENERATED_START, QUICK_SIZES_NOTE } from '../src/bench/benchmarks-doc.js';
import { BYTES_BOUND_PAIRS } from '../src/bench/measure-scenarios.js';
import { ROW_IDS } from '../src/bench/report-rows.js';
import { makeTempDir, PROJECT_ROOT, runInMountNamespace, runNode } from './helpers/run-cli.js';

// The bench is tested as shipped, from the compiled output that `npm test` builds first.
const BENCH = path.join(PROJECT_ROOT, 'dist', 'bench', 'run-bench.js');
const HAND_WRITTEN = 'Notes written by hand stay.';

let removeTempDir: (() => Promise<void>) | undefined;

afterEach(async () => {
  await removeTempDir?.();
  removeTempDir = undefined;
});

function runBench(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!existsSync(BENCH)) throw new Error(`${BENCH} is missing: run \`npm run build\` before this test`);

  return runNode([BENCH, ...args], env);
}

/** Returns the ids of processes whose command line contains `text`, read from Linux's /proc. */
async function processesMentioning(text: string): Promise<number[]> {
  const ids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const commandLine = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.includes(text)) ids.push(Number(name));
  }
  return ids;
}

/** Returns the body lines of the text table: everything between the dashed rule and the blank line after it. */
function textTableRows(stdout: string): string[] {
  const lines = stdout.split('\n');
  const rule = lines.findIndex((line) => /^-+( +-+)+$/.test(line));
  const end = lines.indexOf('', rule);
  return lines.slice(rule + 1, end);
}

describe('bench quick run', () => {
  it('reports every scenario row', async () => {
    const temp = await makeTempDir('coze-bench-smoke-');
    removeTempDir = temp.remove;
    const outFile = path.join(temp.dir, 'benchmarks.md');
    await writeFile(outFile, `# Benchmarks\n\n${HAND_WRITTEN}\n\n${GENERATED_START}\nold table\n${GENERATED_END}\n`);
    // The bench's archives go to the temporary folder, which must be empty again at the end.
    const benchTemp = path.join(temp.dir, 'tmp');
    await mkdir(benchTemp);

    const result = await runBench(['--quick', '--repeat', '1', '--out', outFile], { ...process.env, TMPDIR: benchTemp });

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(QUICK_SIZES_NOTE);
    expect(await readdir(benchTemp)).toEqual([]);
    const rows = textTableRows(result.stdout);
    expect(rows).toHaveLength(ROW_IDS.length);
    for (const row of rows) expect(row).toMatch(/ (PASS|MISS|info)$/);

    const doc = await readFile(outFile, 'utf8');
    expect(doc).toContain(HAND_WRITTEN);
    expect(doc).not.toContain('old table');
    expect(doc).toContain('| Scenario | Measure | Limit / baseline | Median | Ratio | Target | Result | Runs |');
    for (const id of ROW_IDS) expect(doc).toContain(`- **${id}**: `);
    // Both programs and the fake server did work, so none of their CPU times can be 0 ms.
    expect(doc).toMatch(/archiver [1-9]\d* ms, baseline [1-9]\d* ms\. The fake server shares .* It took [1-9]\d* ms while the archiver ran and [1-9]\d* ms while/);
    expect(doc).toMatch(/- Node v\d+\.\d+\.\d+/);
    expect(doc).toContain('- Command: `npm run bench -- --quick --repeat 1 --out ');

    // Even with one repetition, the bytes-bound row has several pairs of runs.
    const bytesRow = doc.split('\n').find((line) => line.startsWith('| Bytes-bound')) ?? '';
    const runLists = /\| ([^|]*) \(baseline ([^)]*)\) \|$/.exec(bytesRow);
    expect(runLists?.[1]?.split(', ')).toHaveLength(BYTES_BOUND_PAIRS);
    expect(runLists?.[2]?.split(', ')).toHaveLength(BYTES_BOUND_PAIRS);
    expect(doc).toContain(`the ratios of ${BYTES_BOUND_PAIRS} pairs`);

    // The program that runs second in a pair has an edge, so the pairs take turns.
    const bytesRuns = [...`${result.stdout}\n${result.stderr}`.matchAll(/^bytes-bound \d+\/\d+: (\S+) /gm)].map((match) => match[1]);
    const archiverFirst = ['archiver', 'undici-baseline'];
    const baselineFirst = ['undici-baseline', 'archiver'];
    expect(bytesRuns).toEqual(Array.from({ length: BYTES_BOUND_PAIRS }, (_, pair) => (pair % 2 === 0 ? archiverFirst : baselineFirst)).flat());

    // An unmeasured run of the baseline comes before the pairs.
    const output = `${result.stdout}\n${result.stderr}`;
    const warmUp = output.search(/^bytes-bound warm-up 1\/1: undici-baseline /m);
    expect(warmUp).toBeGreaterThan(-1);
    expect(warmUp).toBeLessThan(output.search(/^bytes-bound 1\/1: /m));
  }, 30_000);

  it('stops without disk room', async () => {
    const temp = await makeTempDir('coze-bench-disk-');
    removeTempDir = temp.remove;
    const outFile = path.join(temp.dir, 'benchmarks.md');
    const stderrFile = path.join(temp.dir, 'stderr.txt');
    // A 16 MiB tmpfs as TMPDIR, in a private mount namespace so that it vanishes with the shell.
    const script = [
      'dir=$(mktemp -d) && mount -t tmpfs -o size=16m tmpfs "$dir" || exit 97',
      `TMPDIR="$dir" "${process.execPath}" "${BENCH}" --quick --repeat 1 --out "${outFile}" 2>"${stderrFile}"`,
      'echo "EXIT=$?"',
      'echo "LEFT=$(ls -A "$dir" | wc -l)"',
    ].join('\n');

    const output = await runInMountNamespace(script, { PATH: process.env.PATH });

    expect(output).toContain('EXIT=2');
    expect(output).toContain('LEFT=0');
    expect(await readFile(stderrFile, 'utf8')).toMatch(/needs about 64 MiB free in .* for 1 repetition, and 1[0-6] MiB is free\./);
    expect(existsSync(outFile)).toBe(false);
  });

  it('cleans up when stopped', async () => {
    const temp = await makeTempDir('coze-bench-stop-');
    removeTempDir = temp.remove;
    const outFile = path.join(temp.dir, 'benchmarks.md');
    const benchTemp = path.join(temp.dir, 'tmp');
    await mkdir(benchTemp);

    const child = spawn(process.execPath, [BENCH, '--quick', '--repeat', '1', '--out', outFile], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, TMPDIR: benchTemp },
    });
    let stderr = '';
    let stopping = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stopping || !/memory 1\/1: archiver .*, 100\/100 saved/.test(stderr)) return;
      // Several archives are saved by then, and 300 ms later the archiver's 1,000-node run, about
      // 0.8 s long, is under way.
      stopping = true;
      setTimeout(() => child.kill('SIGTERM'), 300);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

    expect(code).toBe(143);
    // Left running, that archiver would retry against the stopped server for over 30 s.
    expect(await processesMentioning(benchTemp)).toEqual([]);
    expect(await readdir(benchTemp)).toEqual([]);
    expect(existsSync(outFile)).toBe(false);
  }, 20_000);

  it('removes archives when asked', async () => {
    const temp = await makeTempDir('coze-bench-archives-');
    removeTempDir = temp.remove;
    const serverRun = (await import(path.join(PROJECT_ROOT, 'dist', 'bench', 'server-run.js'))) as typeof import('../src/bench/server-run.js');
    const shape = benchSizes(true).bytesBound;

    const keptRun = await serverRun.runOnFakeServer(shape, 'archiver', temp.dir);
    const removedRun = await serverRun.runOnFakeServer(shape, 'undici-baseline', temp.dir, { removeArchive: true });

    expect(keptRun.saved).toBe(shape.nodes);
    expect(removedRun.saved).toBe(shape.nodes);
    expect(removedRun.savedBytes).toBeGreaterThan(shape.nodes * shape.bytesPerNode);
    // Only the archiver's folder is left, with its outputs in it.
    const left = await readdir(temp.dir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^archiver-/);
    const keptFiles = await readdir(path.join(temp.dir, left[0]!), { recursive: true, withFileTypes: true });
    const outputFiles = keptFiles.filter((entry) => entry.isFile() && entry.name.endsWith('.txt'));
    expect(outputFiles).toHaveLength(keptRun.saved);
  }, 20_000);

  it('rejects an invalid --repeat', async () => {
    const result = await runBench(['--repeat', '0']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Invalid `--repeat` 0');
  });
});
