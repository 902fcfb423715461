import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { startFakeCozeServer, type FakeCozeServer, type Scenario } from '../src/fake-server/index.js';
import { createLogger, type ExecutionManifest } from '../src/index.js';
import { makeTempDir, readJson, runCli, type CliResult } from './helpers/run-cli.js';

// The token may leave the process only in the Authorization header. It must not reach stdout,
// stderr, logs at any level, error messages or any file of the archive, even when the server
// echoes the request headers back in its error bodies.

const TOKEN = 'pat_SECRET_6f1c9e';
const WORKFLOW_ID = '7350000000000000301';
const EXECUTE_ID = '7431000000000000301';

function uuidFor(index: number): string {
  return `${String(index).padStart(8, '0')}-3333-4444-8555-666677778888`;
}

/**
 * Builds four nodes: node 1 always fails with echoed headers, node 2 once with echoed headers,
 * node 3 once with an HTML page naming the token, and node 4 never fails.
 */
function leakyScenario(): Scenario {
  return {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW_ID,
        executeId: EXECUTE_ID,
        nodes: [1, 2, 3, 4].map((index) => ({
          key: `节点${index}`,
          nodeId: String(100000 + index),
          nodeExecuteUuid: uuidFor(index),
          text: `第${index}个输出节点的内容`,
        })),
      },
    ],
    faults: [
      { name: 'history echo', route: 'run_history', requests: [1], action: { type: 'echoHeaders', status: 500, code: 5000 } },
      { name: 'node echo', route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'echoHeaders', status: 400, code: 4000 } },
      { name: 'node echo once', route: 'execute_node', nodeExecuteUuid: uuidFor(2), requests: [1], action: { type: 'echoHeaders', status: 503, code: 5000 } },
      {
        name: 'html echo',
        route: 'execute_node',
        nodeExecuteUuid: uuidFor(3),
        requests: [1],
        action: { type: 'html', status: 502, body: `<html>request headers: {"authorization":"Bearer ${TOKEN}"}</html>\n` },
      },
    ],
  };
}

/** Reads every file under `dir`. */
async function readAllFiles(dir: string): Promise<Array<{ file: string; bytes: Buffer }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
  return Promise.all(files.map(async (file) => ({ file, bytes: await readFile(file) })));
}

describe('token at --log-level trace with echoed headers', () => {
  let server: FakeCozeServer;
  let temp: { dir: string; remove: () => Promise<void> };
  let outDir: string;
  let result: CliResult;
  /** A second run without `--json`, whose text summary goes to stderr. */
  let textRun: CliResult;
  let manifest: ExecutionManifest;

  beforeAll(async () => {
    server = await startFakeCozeServer({ scenario: leakyScenario() });
    temp = await makeTempDir('coze-security-secrets-');
    outDir = path.join(temp.dir, 'out');
    const tokenFile = path.join(temp.dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);

    const args = [
      'fetch',
      '--workflow-id', WORKFLOW_ID,
      '--execute-id', EXECUTE_ID,
      '--out', outDir,
      '--base-url', server.url,
      '--token-file', tokenFile,
      '--log-level', 'trace',
      '--retry-min-delay', '10ms',
      '--qps', '1000',
    ];
    result = await runCli([...args, '--json']);
    textRun = await runCli([...args, '--force']);
    manifest = await readJson<ExecutionManifest>(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'manifest.json'));
  });

  afterAll(async () => {
    await server?.close();
    await temp?.remove();
  });

  it('server received the trimmed token', () => {
    const headers = new Set(server.requests.map((request) => request.authorization));

    expect([...headers]).toEqual([`Bearer ${TOKEN}`]);
  });

  it('server echoed headers back', () => {
    const echoed = server.requests.filter((request) => request.fault === 'node echo');

    expect(echoed.length).toBeGreaterThan(0);
  });

  it('run ends with the echoing node failed', () => {
    expect(result.code).toBe(1);
    expect(manifest.totals.saved).toBe(3);
    expect(manifest.totals.failed).toBe(1);
  });

  it('echoed message scrubbed, not dropped', () => {
    const failed = manifest.nodes.find((node) => node.status === 'failed');

    expect(failed?.error?.message).toContain('headers received');
    expect(failed?.error?.message).toContain('[REDACTED]');
  });

  it('stderr has log lines', () => {
    expect(result.stderr).toContain('request failed; retrying');
  });

  it('token absent from stdout', () => {
    expect(result.stdout).not.toContain(TOKEN);
  });

  it('token absent from stderr', () => {
    expect(result.stderr).not.toContain(TOKEN);
  });

  it('text summary lists the failure', () => {
    expect(textRun.stderr).toContain('failed: 节点1');
  });

  it('token absent from text summary run', () => {
    expect(textRun.stdout).not.toContain(TOKEN);
    expect(textRun.stderr).not.toContain(TOKEN);
  });

  it('token absent from every archive file', async () => {
    const files = await readAllFiles(temp.dir);
    const leaking = files.filter(({ file, bytes }) => path.basename(file) !== 'token' && bytes.includes(TOKEN));

    expect(files.length).toBeGreaterThan(4);
    expect(leaking.map(({ file }) => file)).toEqual([]);
  });
});

describe('token file and flags', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  async function fetchWithTokenFile(contents: string): Promise<{ result: CliResult; server: FakeCozeServer }> {
    const server = await startFakeCozeServer({
      scenario: { token: TOKEN, executions: [{ workflowId: WORKFLOW_ID, executeId: EXECUTE_ID, nodes: [] }] },
    });
    const temp = await makeTempDir('coze-security-token-');
    cleanups.push(() => server.close(), temp.remove);
    const tokenFile = path.join(temp.dir, 'token');
    await writeFile(tokenFile, contents);

    const result = await runCli([
      'fetch',
      '--workflow-id', WORKFLOW_ID,
      '--execute-id', EXECUTE_ID,
      '--out', path.join(temp.dir, 'out'),
      '--base-url', server.url,
      '--token-file', tokenFile,
    ]);
    return { result, server };
  }

  it.each([
    ['newline', `${TOKEN}\n`],
    ['CRLF', `${TOKEN}\r\n`],
    ['no newline', TOKEN],
  ])('token file ending %s', async (_label, contents) => {
    const { result, server } = await fetchWithTokenFile(contents);

    expect(result.code, result.stderr).toBe(0);
    expect(server.requests[0]?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('help offers no token flag', async () => {
    const result = await runCli(['fetch', '--help']);
    const tokenFlags = result.stdout.match(/--[\w-]*token[\w-]*/g) ?? [];

    expect(new Set(tokenFlags)).toEqual(new Set(['--token-file']));
  });

  it('--token flag rejected', async () => {
    const result = await runCli(['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--token', TOKEN]);

    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain(TOKEN);
  });

  it('--token= value not echoed', async () => {
    const result = await runCli(['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, `--token=${TOKEN}`]);

    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain(TOKEN);
  });

  it('rejected token not printed', async () => {
    const { result } = await fetchWithTokenFile('pat_WRONG_a1b2c3\n');

    expect(result.code).toBe(3);
    expect(result.stderr).not.toContain('pat_WRONG_a1b2c3');
  });
});

describe('logger redaction at trace', () => {
  function captureLogger() {
    let output = '';
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        output += String(chunk);
        callback();
      },
    });
    return { logger: createLogger({ level: 'trace', destination }), output: () => output };
  }

  it.each([
    ['top-level token', { token: TOKEN }],
    ['authorization header', { headers: { authorization: `Bearer ${TOKEN}` } }],
    ['capitalised header', { headers: { Authorization: `Bearer ${TOKEN}` } }],
    ['request headers', { request: { headers: { Authorization: `Bearer ${TOKEN}` } } }],
    ['nested options token', { options: { token: TOKEN } }],
    ['error headers', { err: { headers: { authorization: `Bearer ${TOKEN}` } } }],
  ])('%s redacted', (_label, fields) => {
    const { logger, output } = captureLogger();
    logger.trace(fields, 'request sent');

    expect(output()).toContain('[REDACTED]');
    expect(output()).not.toContain(TOKEN);
  });
});
