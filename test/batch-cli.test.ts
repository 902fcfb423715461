import { existsSync, readdirSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ExecutionManifest } from '../src/index.js';
import {
  BATCH_WORKFLOW,
  batchScenario,
  Cleanups,
  expectedOutputs,
  expiredExecution,
  fastFlags,
  IDS,
  nearExpiryExecution,
  runBatchCli,
  runningExecution,
  savedExecution,
} from './helpers/batch-fixtures.js';
import { readJson } from './helpers/run-cli.js';
import { UNREACHABLE_URL } from './helpers/scenarios.js';

// `fetch --from` end to end: the built CLI against the fake Coze server on 127.0.0.1.

interface SummaryExecution {
  workflow_id: string;
  execute_id: string;
  status: string;
  execute_status: string | null;
  complete: boolean;
  expiry_warning: boolean;
  age_seconds: number | null;
  polls: number;
  totals: ExecutionManifest['totals'];
  error: { code?: number; logid?: string; message: string } | null;
  stopped: string | null;
}

interface Summary {
  exit_code: number;
  stopped: string | null;
  input: { source: string; format: string; executions: number; duplicate_lines: number[] };
  bad_lines: { line: number; reason: string; text: string }[];
  totals: Record<string, number>;
  executions: SummaryExecution[];
}

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function manifestOf(out: string, executeId: string): Promise<ExecutionManifest> {
  return readJson<ExecutionManifest>(path.join(out, BATCH_WORKFLOW, executeId, 'manifest.json'));
}

async function writeList(lines: string[]): Promise<string> {
  const file = path.join(await cleanups.folder('coze-batch-list-'), 'list.txt');
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

describe('mixed batch', () => {
  it('saves, expires, waits and reports', async () => {
    const scenario = batchScenario([savedExecution(), runningExecution(), expiredExecution(), nearExpiryExecution()]);
    const server = await cleanups.server(scenario);
    const out = await cleanups.folder();
    const list = await writeList([
      '# mixed batch',
      `${BATCH_WORKFLOW} ${IDS.saved}`,
      `${BATCH_WORKFLOW} ${IDS.running}`,
      'not-an-id 7431',
      `${BATCH_WORKFLOW},${IDS.expired}`,
      `${BATCH_WORKFLOW} ${IDS.nearExpiry}`,
      `${BATCH_WORKFLOW} ${IDS.missing}`,
      `${BATCH_WORKFLOW} ${IDS.saved}`,
    ]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--wait', '30s', '--json']);
    const summary = JSON.parse(result.stdout) as Summary;

    expect(result.code).toBe(1);
    expect(summary.exit_code).toBe(1);
    expect(summary.stopped).toBeNull();
    expect(summary.bad_lines).toEqual([{ line: 4, reason: expect.stringContaining('workflow_id "not-an-id"'), text: 'not-an-id 7431' }]);
    expect(result.stderr).toContain('line 4');
    expect(summary.input.duplicate_lines).toEqual([8]);
    expect(summary.input.format).toBe('lines');

    // Oldest first, so the two executions past the warning age lead the summary.
    expect(summary.executions.map((execution) => execution.execute_id)).toEqual([IDS.expired, IDS.nearExpiry, IDS.saved, IDS.running, IDS.missing]);
    expect(summary.executions.map((execution) => execution.expiry_warning)).toEqual([true, true, false, false, false]);
    for (const execution of summary.executions) expect(typeof execution.execute_id).toBe('string');

    const [expired, nearExpiry, saved, running, missing] = summary.executions;
    expect(expired!.totals).toMatchObject({ entries: 1, saved: 0, expired: 1 });
    expect(expired!.age_seconds).toBeGreaterThan(24 * 3600);
    expect(nearExpiry!.totals).toMatchObject({ entries: 1, saved: 1 });
    expect(saved!.totals).toMatchObject({ entries: 3, saved: 3, failed: 0, pending: 0 });
    expect(running!.execute_status).toBe('Success');
    expect(running!.totals).toMatchObject({ entries: 2, saved: 2, pending: 0 });
    expect(running!.polls).toBe(1);
    expect(missing!.status).toBe('not_found');
    expect(missing!.error?.code).toBe(4314);
    expect(missing!.error?.logid).toMatch(/^\d{14}[0-9A-F]{20}$/);

    // Each pair was read once, the running one twice: the first pass and the poll it is archived from.
    expect(server.countRequests({ route: 'run_history', executeId: IDS.saved })).toBe(1);
    expect(server.countRequests({ route: 'run_history', executeId: IDS.running })).toBe(2);
    expect(server.countRequests({ route: 'run_history', executeId: IDS.missing })).toBe(1);
    expect(server.countRequests({ route: 'execute_node', executeId: IDS.missing })).toBe(0);
    // The node saved while the execution ran is reused, not fetched again.
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: `${IDS.running}-a` })).toBe(1);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: `${IDS.running}-b` })).toBe(1);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: `${IDS.expired}-a` })).toBe(1);
  });

  it('manifests match the server bytes', async () => {
    const scenario = batchScenario([savedExecution(), expiredExecution(), nearExpiryExecution()]);
    const server = await cleanups.server(scenario);
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, `${BATCH_WORKFLOW} ${IDS.expired}`, `${BATCH_WORKFLOW} ${IDS.nearExpiry}`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out)]);

    expect(result.code).toBe(1);
    for (const executeId of [IDS.saved, IDS.nearExpiry]) {
      const manifest = await manifestOf(out, executeId);
      const expected = expectedOutputs(scenario, executeId);
      for (const entry of manifest.nodes.filter((node) => node.source === 'execute_nodes')) {
        expect(entry.status).toBe('saved');
        expect(entry.bytes).toBe(expected.get(entry.node_execute_uuid!)!.bytes);
        expect(entry.sha256).toBe(expected.get(entry.node_execute_uuid!)!.sha256);
        const bytes = await readFile(path.join(out, BATCH_WORKFLOW, executeId, entry.file!));
        expect(bytes.length).toBe(entry.bytes);
      }
    }

    const expired = await manifestOf(out, IDS.expired);
    expect(expired.nodes[0]!.status).toBe('expired');
    expect(expired.nodes[0]!.error?.code).toBe(4200);
    expect(expired.nodes[0]!.file).toBeNull();

    // The table on stderr marks the executions past the warning age.
    expect(result.stderr).toMatch(new RegExp(`${IDS.expired}\\s+Success\\s+2\\d\\.\\dh!`));
    expect(result.stderr).toMatch(new RegExp(`${IDS.nearExpiry}\\s+Success\\s+21\\.\\dh!`));
    expect(result.stderr).toContain('older than 20h');
    expect(result.stderr).toContain('logid');
  });
});

describe('Ctrl+C during --wait', () => {
  it('records the interruption, not the deadline', async () => {
    const base = runningExecution();
    const unfinished = { key: '第三步', nodeId: '322', nodeExecuteUuid: `${IDS.running}-c`, text: '第三步还在运行。', whileRunning: 'unfinished' as const };
    const running = { ...base, timeline: { finishAfterPolls: 50 }, nodes: [...base.nodes!, unfinished] };
    const server = await cleanups.server(batchScenario([running]));
    const out = await cleanups.folder();
    const manifestPath = path.join(out, BATCH_WORKFLOW, IDS.running, 'manifest.json');
    const args = ['fetch', '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.running, ...fastFlags(server.url, out), '--wait', '5m', '--json'];

    let interruptedAt = 0;
    const result = await runBatchCli(args, {
      onSpawn: (child) => {
        // The first pass has written its manifest and one poll has read the run history again,
        // so the run is waiting and the second pass plans from that poll.
        const poll = setInterval(() => {
          if (!existsSync(manifestPath) || server.countRequests({ route: 'run_history' }) < 2) return;
          clearInterval(poll);
          setTimeout(() => {
            interruptedAt = Date.now();
            child.kill('SIGINT');
          }, 200);
        }, 20);
      },
    });
    const summary = JSON.parse(result.stdout) as Summary;
    const manifest = await manifestOf(out, IDS.running);

    expect(result.code).toBe(130);
    expect(summary.stopped).toBe('interrupted');
    expect(summary.executions.map((execution) => execution.stopped)).toEqual(['interrupted']);
    expect(manifest.stopped).toBe('interrupted');
    expect(manifest.execute_status).toBe('Running');
    expect(manifest.totals).toMatchObject({ entries: 2, saved: 1, pending: 1 });
    // The node still running keeps that reason, and the manifest keeps the run's start.
    expect(manifest.nodes.find((node) => node.title === unfinished.key)?.reason).toBe('node_not_finished');
    expect(Date.parse(manifest.started_at)).toBeLessThan(interruptedAt - 1_000);
    expect(result.stderr).toContain('waiting for the execution to finish was interrupted');
    expect(result.stderr).not.toContain('--wait deadline');
    // Writing the interrupted manifest took no run-history read beyond the first and the polls.
    expect(summary.executions[0]!.polls).toBeGreaterThanOrEqual(1);
    expect(server.countRequests({ route: 'run_history' })).toBe(1 + summary.executions[0]!.polls);
  });
});

describe('a re-run that cannot reach Coze', () => {
  it('names expired outputs under --quiet', async () => {
    const server = await cleanups.server(batchScenario([expiredExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.expired}`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--quiet']);
    const expiredLines = result.stderr.split('\n').filter((line) => line.includes('output node expired'));

    expect(result.code).toBe(1);
    expect(expiredLines).toHaveLength(1);
    expect(JSON.parse(expiredLines[0]!)).toMatchObject({ level: 50, executeId: IDS.expired });
  });

  it('keeps the expiry warning from the earlier run', async () => {
    const server = await cleanups.server(batchScenario([nearExpiryExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.nearExpiry}`]);
    const first = JSON.parse((await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json'])).stdout) as Summary;
    expect(first.executions.map((execution) => execution.expiry_warning)).toEqual([true]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(UNREACHABLE_URL, out), '--retries', '1', '--json']);
    const summary = JSON.parse(result.stdout) as Summary;

    expect(result.code).toBe(1);
    expect(summary.executions.map((execution) => execution.error?.message)).toEqual([expect.stringContaining('ECONNREFUSED')]);
    expect(summary.executions.map((execution) => execution.expiry_warning)).toEqual([true]);
    expect(summary.executions[0]!.age_seconds).toBeGreaterThanOrEqual(first.executions[0]!.age_seconds!);
  });
});

describe('running without --wait', () => {
  it('exits 4, then the rerun completes', async () => {
    const server = await cleanups.server(batchScenario([runningExecution(), savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.running}`, `${BATCH_WORKFLOW} ${IDS.saved}`]);

    const first = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json']);
    const firstSummary = JSON.parse(first.stdout) as Summary;
    const partial = await manifestOf(out, IDS.running);

    expect(first.code).toBe(4);
    expect(firstSummary.exit_code).toBe(4);
    expect(partial.execute_status).toBe('Running');
    expect(partial.complete).toBe(false);
    expect(partial.totals).toMatchObject({ entries: 1, saved: 1 });

    const second = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json']);
    const finished = await manifestOf(out, IDS.running);

    expect(second.code).toBe(0);
    expect(finished.execute_status).toBe('Success');
    expect(finished.complete).toBe(true);
    expect(finished.totals).toMatchObject({ entries: 2, saved: 2, pending: 0 });
    expect(finished.nodes.find((node) => node.node_execute_uuid === `${IDS.running}-a`)!.file).toBe(
      partial.nodes.find((node) => node.node_execute_uuid === `${IDS.running}-a`)!.file,
    );
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: `${IDS.running}-a` })).toBe(1);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: `${IDS.running}-b` })).toBe(1);
    // The finished execution is read again, but its saved files are reused.
    expect(server.countRequests({ route: 'execute_node', executeId: IDS.saved })).toBe(2);
    expect(server.countRequests({ route: 'run_history' })).toBe(4);
  });
});

describe('input formats', () => {
  it('CSV with bad lines', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([
      'label,workflow_id,execute_id',
      `"first, saved",${BATCH_WORKFLOW},${IDS.saved}`,
      `broken,${BATCH_WORKFLOW}`,
      `"quoted ""id""",${BATCH_WORKFLOW},"${IDS.nearExpiry}"`,
      `bad,${BATCH_WORKFLOW},12ab`,
    ]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json']);
    const summary = JSON.parse(result.stdout) as Summary;

    expect(result.code).toBe(1);
    expect(summary.input.format).toBe('csv');
    expect(summary.bad_lines.map((bad) => bad.line)).toEqual([3, 5]);
    expect(summary.bad_lines[0]!.reason).toBe('missing execute_id');
    expect(result.stderr).toContain(`--from ${list} line 3: missing execute_id`);
    expect(result.stderr).toContain(`--from ${list} line 5: execute_id "12ab"`);
    expect(summary.executions.map((execution) => execution.complete)).toEqual([true, true]);
    expect(server.countRequests({ route: 'run_history' })).toBe(2);
  });

  it('JSON Lines from stdin', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const input = [
      JSON.stringify({ workflow_id: BATCH_WORKFLOW, execute_id: IDS.saved }),
      `{"workflow_id": "${BATCH_WORKFLOW}", "execute_id": 7431826405913473001}`,
      '{"workflow_id": 7350}',
    ].join('\n');

    const result = await runBatchCli(['fetch', '--from', '-', ...fastFlags(server.url, out), '--json'], {
      onSpawn: (child) => child.stdin!.end(input),
    });
    const summary = JSON.parse(result.stdout) as Summary;

    expect(result.code).toBe(1);
    expect(summary.input).toMatchObject({ source: '-', format: 'jsonl', executions: 1 });
    expect(summary.bad_lines.map((bad) => bad.line)).toEqual([2, 3]);
    expect(summary.bad_lines[0]!.reason).toContain('beyond 2^53');
    expect(summary.bad_lines[1]!.reason).toBe('missing execute_id');
    expect(summary.executions[0]!.totals.saved).toBe(3);
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
  });

  it('footer counts one duplicate line', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, `${BATCH_WORKFLOW} ${IDS.saved}`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out)]);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain('; 1 duplicate line skipped -> ');
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
  });

  it('plain list all valid exits 0', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW}\t${IDS.saved}`, `${BATCH_WORKFLOW}, ${IDS.nearExpiry}  # almost expired`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--quiet']);

    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    // --quiet leaves only errors on stderr, and nothing failed.
    expect(result.stderr).toBe('');
    expect((await manifestOf(out, IDS.saved)).complete).toBe(true);
    expect((await manifestOf(out, IDS.nearExpiry)).complete).toBe(true);
  });
});

describe('re-runs', () => {
  it('summary counts entries kept from earlier runs', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`]);

    const first = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json']);
    const nodeRequests = server.countRequests({ route: 'execute_node' });
    const second = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json']);
    const text = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out)]);

    const firstTotals = (JSON.parse(first.stdout) as { totals: { saved: number; kept: number } }).totals;
    const secondSummary = JSON.parse(second.stdout) as { totals: { saved: number; kept: number }; executions: Array<{ totals: { kept: number } }> };
    const secondTotals = secondSummary.totals;
    expect(secondSummary.executions[0]!.totals.kept).toBe(firstTotals.saved);
    expect(text.stderr).toMatch(/ saved +kept +failed /);
    expect(firstTotals.saved).toBeGreaterThan(0);
    expect(firstTotals.kept).toBe(0);
    expect(secondTotals.kept).toBe(firstTotals.saved);
    expect(server.countRequests({ route: 'execute_node' })).toBe(nodeRequests);
    expect(text.stderr).toContain(`${firstTotals.saved} saved (${firstTotals.saved} kept from earlier runs)`);
  });
});

describe('terminal safety', () => {
  it('control characters are escaped', async () => {
    const hostile = savedExecution();
    hostile.nodes = [{ key: '\u001b]0;retitled\u0007', nodeId: '360', nodeExecuteUuid: `${IDS.saved}-x`, text: 'x' }];
    const server = await cleanups.server({ ...batchScenario([hostile]), faults: [{ route: 'execute_node', action: { type: 'status', status: 400, code: 4000 } }] });
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, 'bad\u001b[2Jline']);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--log-level', 'silent']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('line 2');
    expect(result.stderr).toContain('retitled');
    expect(result.stderr).not.toMatch(/[\u001b\u0007]/);
    expect(result.stderr).toContain('\\u001b]0;retitled\\u0007');
  });
});

describe('usage errors', () => {
  it('--from with ids exits 2', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`]);

    const result = await runBatchCli(['fetch', '--from', list, '--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.saved, ...fastFlags(server.url, out)]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('either --from');
    expect(server.requests).toHaveLength(0);
  });

  it('no valid line exits 2', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList(['# nothing here', 'abc def']);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out)]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('line 2');
    expect(result.stderr).toContain('No valid execution');
    expect(server.requests).toHaveLength(0);
  });

  it('comments-only list exits 0', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList(['# nothing finished this hour', '']);

    const text = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out)]);
    const json = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json']);
    const summary = JSON.parse(json.stdout) as Summary;

    expect(text.code).toBe(0);
    expect(text.stderr).toContain('The list names no execution, so there was nothing to archive.');
    expect(json.code).toBe(0);
    expect(summary.exit_code).toBe(0);
    expect(summary.executions).toEqual([]);
    expect(summary.totals['executions']).toBe(0);
    expect(server.requests).toHaveLength(0);
  });

  it('missing list file exits 2', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();

    const result = await runBatchCli(['fetch', '--from', path.join(out, 'absent.txt'), ...fastFlags(server.url, out)]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ENOENT');
    expect(server.requests).toHaveLength(0);
  });
});

describe('dry run', () => {
  it('valid list sends nothing', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, `${BATCH_WORKFLOW} ${IDS.nearExpiry}`, `${BATCH_WORKFLOW} ${IDS.saved}`]);

    // No token: a dry run must not need one, because it never calls Coze.
    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--dry-run', '--json'], { token: '' });
    const plan = JSON.parse(result.stdout) as {
      dry_run: boolean;
      exit_code: number;
      input: { first: { workflow_id: string; execute_id: string } | null };
      cost: { run_history_calls: number; node_calls: null };
      base_url: string;
    };

    expect(result.code).toBe(0);
    expect(plan.dry_run).toBe(true);
    expect(plan.base_url).toBe(`${server.url}/`);
    expect(plan.input.first).toEqual({ workflow_id: BATCH_WORKFLOW, execute_id: IDS.saved });
    expect(plan.exit_code).toBe(0);
    expect(plan.cost.run_history_calls).toBe(2);
    expect(plan.cost.node_calls).toBeNull();
    expect(server.requests).toHaveLength(0);
    expect(await readdir(out)).toEqual([]);
  });

  it('text names the cost', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, 'oops']);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--dry-run', '--wait', '10m']);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain('Dry run: 1 execution from');
    // The first execution shows how the columns were read.
    expect(result.stdout).toContain(`First: workflow_id ${BATCH_WORKFLOW}, execute_id ${IDS.saved}.`);
    expect(result.stdout).toContain('1 run-history call now; node calls unknown until run history is read');
    expect(result.stdout).toContain('1 bad input line, listed on stderr.');
    expect(result.stdout).toContain('--wait 10m');
    expect(result.stderr).toContain('line 2');
    expect(server.requests).toHaveLength(0);
  });

  it('plan on stdout under --quiet', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--dry-run', '--quiet']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('1 run-history call now');
    expect(result.stderr).toBe('');
    expect(server.requests).toHaveLength(0);
  });

  it('rejects what the run would', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const file = path.join(out, 'a-file');
    await writeFile(file, 'x');
    const ids = ['--workflow-id', BATCH_WORKFLOW, '--execute-id', IDS.saved];

    const cases: Array<[string[], string]> = [
      [['--base-url', 'ftp://127.0.0.1:1'], 'Invalid base URL'],
      [['--base-url', `${server.url}/v1`], '/v1'],
      [['--max-response-size', '0'], '"0" is not a size above 0.'],
      [['--max-response-size', '1023'], 'Invalid maximum response size (--max-response-size, bytes) 1023: expected at least 1024 bytes'],
      [['--max-outage', '5'], `option '--max-outage <duration>' argument '5' is invalid`],
      [['--out', file], `Invalid --out ${file}: it exists and is not a folder.`],
      [['--out', '/proc/coze-node-outputs-dry-run/archive'], 'a folder cannot be made in /proc (ENOENT)'],
    ];
    for (const [extra, message] of cases) {
      const result = await runBatchCli(['fetch', ...ids, ...fastFlags(server.url, out), ...extra, '--dry-run'], { token: '' });
      expect(result.code, extra.join(' ')).toBe(2);
      expect(result.stderr, extra.join(' ')).toContain(message);
    }

    const valid = await runBatchCli(['fetch', ...ids, ...fastFlags(server.url, out), '--max-outage', '0', '--dry-run'], { token: '' });
    expect(valid.code).toBe(0);
    expect(valid.stdout).toContain(`Requests would go to ${server.url}/; every other setting is valid too.`);
    expect(server.requests).toHaveLength(0);
    // The check of --out leaves nothing behind.
    expect(readdirSync(out)).toEqual(['a-file']);
  });

  it('nothing valid exits 2', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const out = await cleanups.folder();
    const list = await writeList(['x y']);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--dry-run']);

    expect(result.code).toBe(2);
    expect(server.requests).toHaveLength(0);
  });
});

describe('interrupted batch', () => {
  it('SIGTERM writes started manifests', async () => {
    const scenario = { ...batchScenario([savedExecution(), nearExpiryExecution(), expiredExecution()]), latencyMs: { execute_node: 400 } };
    const server = await cleanups.server(scenario);
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, `${BATCH_WORKFLOW} ${IDS.nearExpiry}`, `${BATCH_WORKFLOW} ${IDS.expired}`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--json'], {
      onSpawn: (child) => {
        const timer = setInterval(() => {
          if (server.countRequests({ route: 'execute_node' }) === 0) return;
          clearInterval(timer);
          child.kill('SIGTERM');
        }, 10);
      },
    });
    const summary = JSON.parse(result.stdout) as Summary;

    expect(result.code).toBe(143);
    expect(summary.exit_code).toBe(143);
    expect(result.stderr).toContain('SIGTERM: stopping; writing the manifest. Send SIGTERM again to exit at once.');
    expect(result.stderr).toContain('execution stopped early');
    expect(result.stderr).not.toContain('execution finished');
    // Every run history was read before the first node request, so every execution started.
    expect(server.countRequests({ route: 'run_history' })).toBe(3);
    for (const executeId of [IDS.saved, IDS.nearExpiry, IDS.expired]) {
      const manifest = await manifestOf(out, executeId);
      expect(manifest.stopped).toBe('interrupted');
      expect(manifest.complete).toBe(false);
    }
    expect(server.countRequests({ route: 'execute_node' })).toBeLessThan(4);
  });
});

describe('token rejected', () => {
  it('stops the batch with exit 3', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution(), expiredExecution()]));
    const out = await cleanups.folder();
    const list = await writeList([`${BATCH_WORKFLOW} ${IDS.saved}`, `${BATCH_WORKFLOW} ${IDS.nearExpiry}`, `${BATCH_WORKFLOW} ${IDS.expired}`]);

    const result = await runBatchCli(['fetch', '--from', list, ...fastFlags(server.url, out), '--concurrency', '1', '--json'], {
      token: 'pat_wrong_token',
    });
    const summary = JSON.parse(result.stdout) as Summary;

    expect(result.code).toBe(3);
    expect(summary.exit_code).toBe(3);
    expect(summary.stopped).toContain('rejected the token');
    expect(result.stderr).toContain('COZE_API_TOKEN');
    // The first read failed with 4100, and nothing else was sent.
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.code).toBe(4100);

    const first = await manifestOf(out, IDS.saved);
    expect(first.stopped).toContain('token rejected');
    expect(summary.executions.filter((execution) => execution.status === 'not_started')).toHaveLength(2);
    expect(existsSync(path.join(out, BATCH_WORKFLOW, IDS.nearExpiry))).toBe(false);
  });
});
