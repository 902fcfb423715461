import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ExecutionManifest } from '../src/index.js';
import { startFakeCozeServer, type FakeCozeServer, type Scenario } from '../src/fake-server/index.js';
import { CLI_PATH, makeTempDir, readJson, runCli, type CliResult } from './helpers/run-cli.js';

// Options, token sources, exit codes and what the built CLI prints, against the fake Coze
// server on 127.0.0.1.

const TOKEN = 'pat_cli_test_token_5e2b7c91';
const WORKFLOW = '7350000000000000201';
const DONE = '7431826405913472001';
const RUNNING = '7431826405913472002';
const FORBIDDEN_WORKFLOW = '7350000000000000299';
const ECHO_UUID = 'b2000000-0000-4000-8000-000000000003';

const SCENARIO: Scenario = {
  token: TOKEN,
  auth: { forbiddenWorkflowIds: [FORBIDDEN_WORKFLOW] },
  executions: [
    {
      workflowId: WORKFLOW,
      executeId: DONE,
      record: { output: { Output: '{"ok":true}' } },
      nodes: [
        { key: '结论', nodeId: '210', nodeExecuteUuid: 'b2000000-0000-4000-8000-000000000001', text: '一切正常。' },
        { key: 'details', nodeId: '211', nodeExecuteUuid: 'b2000000-0000-4000-8000-000000000002', text: 'all checks passed' },
      ],
    },
    {
      workflowId: WORKFLOW,
      executeId: RUNNING,
      record: { execute_status: 'Running', output: '{"node_status":"{}"}' },
      nodes: [{ key: '进行中', nodeId: '212', nodeExecuteUuid: 'b2000000-0000-4000-8000-000000000004', isFinish: false, text: '写到一半' }],
    },
    { workflowId: FORBIDDEN_WORKFLOW, executeId: DONE },
  ],
};

/**
 * Preloaded into every CLI child. It makes any TCP connection to a host other than loopback
 * throw before DNS, so a test whose base URL falls back to a default never reaches a real service.
 */
const LOOPBACK_GUARD = `
import net from 'node:net';
const connect = net.Socket.prototype.connect;
const loopback = new Set(['127.0.0.1', 'localhost', '::1']);
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const isOptions = first !== null && typeof first === 'object';
  if (isOptions && first.path !== undefined) return connect.apply(this, args);
  let host = 'localhost';
  if (isOptions && first.host !== undefined) host = first.host;
  if (!isOptions && typeof args[1] === 'string') host = args[1];
  if (!loopback.has(host)) throw new Error('test guard: connection to ' + host + ' blocked');
  return connect.apply(this, args);
};`;
const GUARD_OPTION = `--import=data:text/javascript,${encodeURIComponent(LOOPBACK_GUARD)}`;

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function startServer(scenario: Scenario = SCENARIO): Promise<FakeCozeServer> {
  const server = await startFakeCozeServer({ scenario });
  cleanups.push(() => server.close());
  return server;
}

async function newOutDir(): Promise<string> {
  const temp = await makeTempDir('coze-fetch-cli-');
  cleanups.push(temp.remove);
  return temp.dir;
}

/** Runs the CLI with only the given environment, plus the loopback guard. */
function run(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { env: { ...env, NODE_OPTIONS: GUARD_OPTION } });
}

function fetchArgs(out: string, executeId = DONE, workflowId = WORKFLOW): string[] {
  return ['fetch', '--workflow-id', workflowId, '--execute-id', executeId, '--out', out, '--qps', '200', '--retry-min-delay', '10ms'];
}

/** Returns the keys of the outermost object of one JSON line, duplicates included. */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let index = 0;

  while (index < line.length) {
    const character = line[index];
    if (character === '"') {
      let end = index + 1;
      while (line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (depth === 1 && line[end + 1] === ':') keys.push(JSON.parse(line.slice(index, end + 1)) as string);
      index = end + 1;
      continue;
    }
    if (character === '{' || character === '[') depth += 1;
    if (character === '}' || character === ']') depth -= 1;
    index += 1;
  }
  return keys;
}

/** Lists every file under `dir` with its full path. */
async function listFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true });
  const files: string[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    if ((await stat(full)).isFile()) files.push(full);
  }
  return files;
}

describe('fetch usage errors', () => {
  it('missing token exits 2', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('COZE_API_TOKEN');
    expect(server.requests).toHaveLength(0);
  });

  it('duration without unit exits 2', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--timeout', '30'], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--timeout');
    expect(server.requests).toHaveLength(0);
  });

  it.each(['0x10', '1e3', '-1', ''])('qps %j exits 2', async (qps) => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--qps', qps], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`"${qps}" is not a number above 0, such as 20 or 0.5.`);
    expect(server.requests).toHaveLength(0);
  });

  it('zero timeout exits 2', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--timeout', '0s'], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`option '--timeout <duration>' argument '0s' is invalid. "0s" is not a duration above 0.`);
    expect(server.requests).toHaveLength(0);
  });

  it('expiry warning past 24h exits 2', async () => {
    const server = await startServer();
    const tooLate = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--expiry-warning', '30h'], { COZE_API_TOKEN: TOKEN });
    const atExpiry = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--expiry-warning', '24h', '--dry-run'], { COZE_API_TOKEN: TOKEN });

    expect(tooLate.code).toBe(2);
    expect(tooLate.stderr).toContain(`argument '30h' is invalid. "30h" is above 24h: Coze deletes output-node results 24h after the run`);
    expect(atExpiry.code).toBe(0);
    expect(server.requests).toHaveLength(0);
  });

  it('base URL ending in /v1 exits 2 before any request', async () => {
    const server = await startServer();
    const outDir = await newOutDir();
    const result = await run([...fetchArgs(outDir), '--base-url', `${server.url}/v1`], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('leave out the trailing /v1');
    expect(server.requests).toHaveLength(0);
    expect(existsSync(path.join(outDir, WORKFLOW))).toBe(false);
  });

  it('non-digit execute id exits 2', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir(), '74318264059134x'), '--base-url', server.url], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--execute-id');
    expect(server.requests).toHaveLength(0);
  });

  it('region with base URL exits 2', async () => {
    const server = await startServer();
    const args = [...fetchArgs(await newOutDir()), '--region', 'com', '--base-url', server.url];
    const result = await run(args, { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--region');
    expect(server.requests).toHaveLength(0);
  });

  it('missing ids exit 2', async () => {
    const server = await startServer();
    const result = await run(['fetch', '--base-url', server.url, '--out', await newOutDir()], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--workflow-id');
    expect(server.requests).toHaveLength(0);
  });
});

describe('unknown options', () => {
  it.each(['fetch', 'verify', 'export'])('%s points to its help', async (command) => {
    const result = await run([command, '--bogus']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown option '--bogus'");
    expect(result.stderr).toContain(`run coze-node-outputs ${command} --help for every option`);
  });
});

describe('closed stdout', () => {
  it('help into a closed pipe exits 0 quietly', async () => {
    const child = spawn(process.execPath, [CLI_PATH, 'fetch', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader goes away before the help is written, as `| head -1` can.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

    expect(code).toBe(0);
    expect(stderr).not.toContain('EPIPE');
    expect(stderr).toBe('');
  });
});

describe('fetch token sources', () => {
  it('rejected token exits 3', async () => {
    const server = await startServer();
    const wrongToken = 'pat_wrong_token_0d4f6a2e';
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--retries', '1'], { COZE_API_TOKEN: wrongToken });

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('rejected the token');
    expect(result.stderr).toContain('4100');
    expect(result.stdout).not.toContain(wrongToken);
    expect(result.stderr).not.toContain(wrongToken);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });

  it('rejected token advice shows once', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url], { COZE_API_TOKEN: 'pat_wrong_token_93e1' });

    expect(result.code).toBe(3);
    // The warning that stops the batch names the code. The last line adds what to check.
    expect(result.stderr).toMatch(/"msg":"stopping the batch"/);
    expect(result.stderr.match(/code 4100/g)?.length).toBeGreaterThan(1);
    expect(result.stderr.match(/Check the token/g)).toHaveLength(1);
    expect(result.stderr.trimEnd().split('\n').at(-1)).toMatch(/^coze-node-outputs: Coze rejected the token \(code 4100.*\)\. Check the token /);
    expect(result.stderr).not.toContain('library');
  });

  it('rejected token shows once under --quiet', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--quiet'], { COZE_API_TOKEN: 'pat_wrong_token_5b1c' });

    expect(result.code).toBe(3);
    expect(result.stderr.match(/rejected the token/g)).toHaveLength(1);
    expect(result.stderr).not.toContain('"level"');
  });

  it('forbidden workflow exits 3', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir(), DONE, FORBIDDEN_WORKFLOW), '--base-url', server.url], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('4101');
    expect(result.stderr).not.toContain(TOKEN);
  });

  it('COZE_API_KEY alias works', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url], { COZE_API_KEY: TOKEN });

    expect(result.code).toBe(0);
    expect(server.requests.length).toBeGreaterThan(0);
    for (const request of server.requests) expect(request.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('empty COZE_API_TOKEN falls back', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url], { COZE_API_TOKEN: '', COZE_API_KEY: TOKEN });

    expect(result.code).toBe(0);
    expect(server.requests.length).toBeGreaterThan(0);
    for (const request of server.requests) expect(request.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('token file newline is trimmed', async () => {
    const server = await startServer();
    const out = await newOutDir();
    const tokenFile = path.join(out, 'token.txt');
    await writeFile(tokenFile, `${TOKEN}\n`);
    const result = await run([...fetchArgs(out), '--base-url', server.url, '--token-file', tokenFile]);

    expect(result.code).toBe(0);
    expect(server.requests.length).toBeGreaterThan(0);
    for (const request of server.requests) expect(request.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('COZE_API_BASE sets the server', async () => {
    const server = await startServer();
    const out = await newOutDir();
    const result = await run(fetchArgs(out), { COZE_API_TOKEN: TOKEN, COZE_API_BASE: server.url });
    const manifest = await readJson<ExecutionManifest>(path.join(out, WORKFLOW, DONE, 'manifest.json'));

    expect(result.code).toBe(0);
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
    expect(server.countRequests({ route: 'execute_node' })).toBe(2);
    expect(manifest.totals.saved).toBe(3);
  });
});

describe('fetch output streams', () => {
  it('summary names what it leaves out', async () => {
    // Two failed and eleven flagged entries: ten detail lines, then the rest counted by kind.
    const nodes = Array.from({ length: 13 }, (_, index) => ({
      key: `节点${index}`,
      nodeId: String(300 + index),
      nodeExecuteUuid: `b3000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
      text: '半截',
      resultIsFinish: false,
    }));
    const failing = nodes.slice(0, 2).map((node) => ({ route: 'execute_node' as const, nodeExecuteUuid: node.nodeExecuteUuid, action: { type: 'status' as const, status: 200, code: 4000, msg: 'invalid' } }));
    const server = await startServer({ token: TOKEN, executions: [{ workflowId: WORKFLOW, executeId: DONE, nodes }], faults: failing });

    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url], { COZE_API_TOKEN: TOKEN });

    expect(result.code).toBe(1);
    expect(result.stderr.match(/^ {2}(failed|flagged): /gm)).toHaveLength(10);
    expect(result.stderr).toContain('… and 3 more in its manifest.json: 3 flagged');
  });

  it('json summary goes to stdout', async () => {
    const server = await startServer();
    const out = await newOutDir();
    const result = await run([...fetchArgs(out), '--base-url', server.url, '--json'], { COZE_API_TOKEN: TOKEN });
    const summary = JSON.parse(result.stdout) as { exit_code: number; executions: Record<string, unknown>[] };
    const execution = summary.executions[0]!;

    expect(result.code).toBe(0);
    expect(summary.exit_code).toBe(result.code);
    expect(summary.executions).toHaveLength(1);
    expect(execution['workflow_id']).toBe(WORKFLOW);
    expect(execution['execute_id']).toBe(DONE);
    expect(execution['execute_status']).toBe('Success');
    expect(execution['manifest']).toBe(path.join(out, WORKFLOW, DONE, 'manifest.json'));
    expect(existsSync(execution['manifest'] as string)).toBe(true);
  });

  it('json counts requests and over-limit responses', async () => {
    const quiet = await startServer();
    const plain = await run([...fetchArgs(await newOutDir()), '--base-url', quiet.url, '--json'], { COZE_API_TOKEN: TOKEN });
    const plainRequests = (JSON.parse(plain.stdout) as { requests: Record<string, number> }).requests;

    const nodes = Array.from({ length: 6 }, (_, index) => ({
      key: `节点${index}`,
      nodeId: String(300 + index),
      nodeExecuteUuid: `b2000000-0000-4000-8000-0000000001${String(index).padStart(2, '0')}`,
      text: `第${index}段`,
    }));
    const limited = await startServer({
      token: TOKEN,
      rateLimit: { qps: 4, answer: 'http429' },
      executions: [{ workflowId: WORKFLOW, executeId: DONE, nodes }],
    });
    const args = ['fetch', '--workflow-id', WORKFLOW, '--execute-id', DONE, '--qps', '20', '--retry-min-delay', '10ms', '--retries', '10'];
    const result = await run([...args, '--out', await newOutDir(), '--base-url', limited.url, '--json'], { COZE_API_TOKEN: TOKEN });
    const requests = (JSON.parse(result.stdout) as { requests: Record<string, number> }).requests;
    const text = await run([...args, '--out', await newOutDir(), '--base-url', limited.url], { COZE_API_TOKEN: TOKEN });

    expect(plain.code).toBe(0);
    // The run history, then the two nodes.
    expect(plainRequests).toEqual({ sent: 3, over_limit_responses: 0, qps: 200, lowest_qps: 200, lowest_over_limit_qps: null });
    expect(result.code).toBe(0);
    expect(requests['over_limit_responses']).toBeGreaterThan(0);
    expect(requests['sent']).toBe(7 + requests['over_limit_responses']!);
    expect(requests['lowest_qps']).toBeLessThan(20);
    expect(requests['qps']).toBe(20);
    // The server allows 4 per second, so the rate that still drew an over-limit response is above 4, and at most --qps.
    expect(requests['lowest_over_limit_qps']).toBeGreaterThan(4);
    expect(requests['lowest_over_limit_qps']).toBeLessThanOrEqual(20);
    expect(text.code).toBe(0);
    expect(text.stderr).toMatch(/Coze answered over-limit \d+ times? in \d+ requests, so the rate it allows this run is below [\d.]+ requests per second, the lowest that drew one\./);
    expect(text.stderr).toMatch(/The run slowed to [\d.]+ at its slowest \(--qps 20\)\. A --qps under that limit avoids the pauses\./);
    expect(plain.stderr).not.toContain('over-limit');
  });

  it('json usage error goes to stdout', async () => {
    const server = await startServer();
    const badValue = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--qps', '0x10', '--json'], { COZE_API_TOKEN: TOKEN });
    const noToken = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--json'], {});

    expect(badValue.code).toBe(2);
    expect(JSON.parse(badValue.stdout)).toEqual({ exit_code: 2, error: expect.stringContaining('"0x10" is not a number above 0') });
    expect(noToken.code).toBe(2);
    expect(JSON.parse(noToken.stdout)).toEqual({ exit_code: 2, error: expect.stringMatching(/^Missing token: /) });
    expect(server.requests).toHaveLength(0);
  });

  it('json keeps ids as strings', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--json'], { COZE_API_TOKEN: TOKEN });

    expect(result.stdout).toMatch(new RegExp(`"execute_id":\\s*"${DONE}"`));
    expect(result.stdout).toMatch(new RegExp(`"workflow_id":\\s*"${WORKFLOW}"`));
  });

  it('json reports exit code 4', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir(), RUNNING), '--base-url', server.url, '--json'], { COZE_API_TOKEN: TOKEN });
    const summary = JSON.parse(result.stdout) as { exit_code: number; executions: { execute_status: string }[] };

    expect(result.code).toBe(4);
    expect(summary.exit_code).toBe(4);
    expect(summary.executions[0]!.execute_status).toBe('Running');
  });

  it('logs go to stderr', async () => {
    const server = await startServer();
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--json'], { COZE_API_TOKEN: TOKEN });
    const logLines = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; executeId?: string });

    expect(logLines.some((line) => line.msg === 'execution started' && line.executeId === DONE)).toBe(true);
    expect(result.stdout).not.toContain('execution started');
  });

  it('log lines have unique keys', async () => {
    const uuid = 'b2000000-0000-4000-8000-000000000005';
    const scenario: Scenario = {
      token: TOKEN,
      executions: [{ workflowId: WORKFLOW, executeId: DONE, nodes: [{ key: 'bad', nodeId: '214', nodeExecuteUuid: uuid, text: 'x' }] }],
      faults: [{ route: 'execute_node', action: { type: 'status', status: 200, code: 4000, msg: 'node_execute_uuid is invalid' } }],
    };
    const server = await startServer(scenario);
    const result = await run([...fetchArgs(await newOutDir()), '--base-url', server.url, '--log-level', 'debug'], { COZE_API_TOKEN: TOKEN });
    const logLines = result.stderr.split('\n').filter((line) => line.startsWith('{'));
    const errorLine = logLines.find((line) => line.includes('"level":50'));

    expect(result.code).toBe(1);
    expect(errorLine).toBeDefined();
    for (const line of logLines) {
      const keys = topLevelKeys(line);
      expect(keys, line).toEqual([...new Set(keys)]);
    }
  });

  it('trace logs never show token', async () => {
    // One node responds with an error that echoes every request header, Authorization included.
    const scenario: Scenario = {
      ...SCENARIO,
      executions: [
        {
          workflowId: WORKFLOW,
          executeId: DONE,
          record: { output: { Output: '{"ok":true}' } },
          nodes: [
            { key: '结论', nodeId: '210', nodeExecuteUuid: 'b2000000-0000-4000-8000-000000000001', text: '一切正常。' },
            { key: 'echo', nodeId: '213', nodeExecuteUuid: ECHO_UUID, text: 'never served' },
          ],
        },
      ],
      faults: [{ route: 'execute_node', nodeExecuteUuid: ECHO_UUID, action: { type: 'echoHeaders' } }],
    };
    const server = await startServer(scenario);
    const out = await newOutDir();
    const result = await run([...fetchArgs(out), '--base-url', server.url, '--log-level', 'trace', '--json'], { COZE_API_TOKEN: TOKEN });
    const files = await listFiles(out);
    const manifest = await readJson<ExecutionManifest>(path.join(out, WORKFLOW, DONE, 'manifest.json'));

    expect(result.code).toBe(1);
    expect(server.requests.find((request) => request.nodeExecuteUuid === ECHO_UUID)?.fault).toBe('echoHeaders');
    expect(manifest.nodes.find((entry) => entry.node_execute_uuid === ECHO_UUID)?.error?.msg).toContain('[REDACTED]');
    expect(result.stderr).toContain('Bearer [REDACTED]');
    expect(result.stdout).not.toContain(TOKEN);
    expect(result.stderr).not.toContain(TOKEN);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(await readFile(file, 'utf8'), file).not.toContain(TOKEN);
    }
  });
});
