import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import { startFakeCozeServer, type FakeCozeServer, type Scenario } from '../src/fake-server/index.js';
import { firstLine } from '../src/http/redact.js';
import { archiveExecutionOutputs, UsageError, type ExecutionManifest } from '../src/index.js';
import { makeTempDir, readJson, runCli } from './helpers/run-cli.js';

// What the remote service sends is not trusted: a body may be huge, an HTML gateway page or a
// redirect, and none of them may exhaust memory, leak the token or move the token elsewhere.

const TOKEN = 'pat_SECRET_6f1c9e';
const WORKFLOW_ID = '7350000000000000401';
const EXECUTE_ID = '7431000000000000401';
const MIB = 1024 * 1024;

type FaultRule = NonNullable<Scenario['faults']>[number];

function uuidFor(index: number): string {
  return `${String(index).padStart(8, '0')}-4444-4555-8666-777788889999`;
}

function scenario(faults: FaultRule[]): Scenario {
  return {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW_ID,
        executeId: EXECUTE_ID,
        nodes: [1, 2].map((index) => ({
          key: `节点${index}`,
          nodeId: String(100000 + index),
          nodeExecuteUuid: uuidFor(index),
          text: `第${index}个输出`,
        })),
      },
    ],
    faults,
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(faults: FaultRule[]): Promise<FakeCozeServer> {
  const server = await startFakeCozeServer({ scenario: scenario(faults) });
  cleanups.push(() => server.close());
  return server;
}

async function tempDir(): Promise<string> {
  const temp = await makeTempDir('coze-security-responses-');
  cleanups.push(temp.remove);
  return temp.dir;
}

async function archive(baseUrl: string, outDir: string, options: Partial<Parameters<typeof archiveExecutionOutputs>[0]> = {}) {
  return archiveExecutionOutputs({
    token: TOKEN,
    baseUrl,
    outDir,
    workflowId: WORKFLOW_ID,
    executeId: EXECUTE_ID,
    retries: 2,
    retryMinDelayMs: 5,
    retryMaxDelayMs: 20,
    timeoutMs: 5_000,
    qps: 1_000,
    ...options,
  });
}

function entryFor(manifest: ExecutionManifest, index: number) {
  return manifest.nodes.find((node) => node.node_execute_uuid === uuidFor(index))!;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('oversized responses', () => {
  it('CLI fails the entry as too_large', async () => {
    const server = await start([
      { route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'oversized', bytes: 8 * MIB } },
    ]);
    const outDir = await tempDir();

    const result = await runCli(
      ['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--out', outDir, '--base-url', server.url, '--max-response-size', '1MiB'],
      { env: { COZE_API_TOKEN: TOKEN } },
    );
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);
    const manifest = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
    const entry = entryFor(manifest, 1);

    expect(result.code).toBe(1);
    expect(entry.status).toBe('failed');
    expect(entry.error?.kind).toBe('too_large');
    expect(entry.error?.message).toContain('--max-response-size');
    expect(entry.file).toBeNull();
    expect(entryFor(manifest, 2).status).toBe('saved');
    expect(await filesUnder(path.join(folder, 'nodes'))).toEqual([path.basename(entryFor(manifest, 2).file!)]);
    expect(server.countRequests({ nodeExecuteUuid: uuidFor(1) }), 'not retried').toBe(1);
  });

  it('run history too large saves nothing', async () => {
    const server = await start([{ route: 'run_history', action: { type: 'oversized', bytes: 4 * MIB } }]);
    const outDir = await tempDir();

    const manifest = await archive(server.url, outDir, { maxResponseBytes: MIB });
    const files = await filesUnder(path.join(outDir, WORKFLOW_ID, EXECUTE_ID));

    expect(manifest.error?.kind).toBe('too_large');
    expect(manifest.execution_file).toBeNull();
    expect(files).toEqual(['manifest.json']);
  });

  it('memory stays bounded on 256 MiB', async () => {
    const server = await start([
      { route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'oversized', bytes: 256 * MIB } },
    ]);
    const outDir = await tempDir();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakArrayBuffers = before.arrayBuffers;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers);
    }, 2);

    let manifest: ExecutionManifest;
    try {
      manifest = await archive(server.url, outDir, { maxResponseBytes: MIB });
    } finally {
      clearInterval(sampler);
    }

    expect(entryFor(manifest, 1).error?.kind).toBe('too_large');
    expect(peakArrayBuffers - before.arrayBuffers, 'buffer growth').toBeLessThan(32 * MIB);
    expect(peakRss - before.rss, 'resident growth').toBeLessThan(96 * MIB);
  });
});

describe('HTML gateway pages', () => {
  it('502 page reported, retried as set', async () => {
    const server = await start([{ route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'html', status: 502 } }]);
    const outDir = await tempDir();

    const result = await runCli(
      [
        'fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--out', outDir, '--base-url', server.url,
        '--retries', '2', '--retry-min-delay', '10ms',
      ],
      { env: { COZE_API_TOKEN: TOKEN } },
    );
    const manifest = await readJson<ExecutionManifest>(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'manifest.json'));
    const entry = entryFor(manifest, 1);

    expect(result.code).toBe(1);
    expect(entry.status).toBe('failed');
    expect(entry.error?.http_status).toBe(502);
    expect(entry.error?.message).toContain('HTTP 502');
    expect(entry.error?.message).toContain('<!DOCTYPE html>');
    expect(entry.error?.message).not.toContain('</html>');
    expect(server.countRequests({ nodeExecuteUuid: uuidFor(1) }), 'first attempt and 2 retries').toBe(3);
  });

  it('long first line truncated', async () => {
    const body = `<html><body>${'gateway timeout '.repeat(100)}</body></html>\n<p>second line</p>\n`;
    const server = await start([{ route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'html', status: 502, body } }]);

    const manifest = await archive(server.url, await tempDir(), { retries: 0 });
    const message = entryFor(manifest, 1).error!.message;
    const bodyPart = message.slice(message.indexOf('<html>'));

    expect(bodyPart.length).toBeLessThanOrEqual(201);
    expect(bodyPart.endsWith('…')).toBe(true);
    expect(message).not.toContain('second line');
  });

  it('token cut at the limit not shown', async () => {
    // The token starts 12 characters before the 200-character cut of the first line.
    const body = `<html>${'x'.repeat(182)}token=${TOKEN}</html>\n`;
    const server = await start([{ route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'html', status: 502, body } }]);

    const manifest = await archive(server.url, await tempDir(), { retries: 0 });
    const message = entryFor(manifest, 1).error!.message;

    expect(message).toContain('HTTP 502');
    expect(message).not.toContain(TOKEN.slice(0, 6));
  });

  it('Bearer token in the page scrubbed', async () => {
    const body = `<html><title>502</title>Authorization: Bearer ${TOKEN}</html>\n`;
    const server = await start([{ route: 'execute_node', nodeExecuteUuid: uuidFor(1), action: { type: 'html', status: 502, body } }]);

    const manifest = await archive(server.url, await tempDir(), { retries: 0 });
    const message = entryFor(manifest, 1).error!.message;

    expect(message).toContain('Bearer [REDACTED]');
    expect(message).not.toContain(TOKEN);
  });
});

describe('firstLine cut', () => {
  it('keeps an emoji whole', () => {
    // 9 ASCII characters then an emoji of two UTF-16 units: a cut at 10 falls between them.
    const line = firstLine(`${'x'.repeat(9)}😀tail`, 10);

    expect(line).toBe(`${'x'.repeat(9)}…`);
    expect(Buffer.from(line, 'utf8').toString('utf8')).toBe(line);
  });
});

describe('redirects', () => {
  it('302 over loopback not followed', async () => {
    const target = await start([]);
    const redirector = http.createServer((req, res) => {
      res.writeHead(302, { location: `${target.url}${req.url ?? '/'}`, 'content-type': 'text/html' });
      res.end('<html>302 Found</html>\n');
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
    const port = (redirector.address() as AddressInfo).port;

    const manifest = await archive(`http://127.0.0.1:${port}`, await tempDir(), { retries: 0 });

    expect(manifest.error?.http_status).toBe(302);
    expect(target.requests.length, 'requests at the redirect target').toBe(0);
  });

  it('302 in MockAgent not followed', async () => {
    const origin = 'http://127.0.0.1:9';
    const agent = new MockAgent();
    agent.disableNetConnect();
    cleanups.push(() => agent.close());
    const pool = agent.get(origin);
    pool
      .intercept({ path: `/v1/workflows/${WORKFLOW_ID}/run_histories/${EXECUTE_ID}`, method: 'GET' })
      .reply(302, '', { headers: { location: `${origin}/moved` } });
    pool.intercept({ path: '/moved', method: 'GET' }).reply(200, '{"code":0,"data":[]}');

    const manifest = await archive(origin, await tempDir(), { retries: 0, dispatcher: agent });

    expect(manifest.error?.http_status).toBe(302);
    expect(agent.pendingInterceptors().map((interceptor) => interceptor.path)).toEqual(['/moved']);
  });
});

describe('plain HTTP to a non-loopback host', () => {
  it('CLI exits 2', async () => {
    const outDir = await tempDir();

    const result = await runCli(
      ['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--out', outDir, '--base-url', 'http://coze.example.invalid'],
      { env: { COZE_API_TOKEN: TOKEN } },
    );

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('plain HTTP');
    expect(result.stderr).not.toContain(TOKEN);
    expect(await readdir(outDir)).toEqual([]);
  });

  it.each([
    'http://coze.example.invalid',
    'HTTP://COZE.EXAMPLE.INVALID:8080/api',
    'http://127.0.0.1.invalid',
    'http://localhost.invalid',
    'http://127.0.0.1@coze.example.invalid',
  ])('%s rejected before any request', async (baseUrl) => {
    const agent = new MockAgent().enableCallHistory();
    agent.disableNetConnect();
    cleanups.push(() => agent.close());
    agent.get(/.*/).intercept({ path: /.*/, method: 'GET' }).reply(200, '{"code":0,"data":[]}');

    const run = archive(baseUrl, await tempDir(), { dispatcher: agent });

    await expect(run).rejects.toBeInstanceOf(UsageError);
    // The agent creates its call history on the first dispatch, so none means no request.
    expect(agent.getCallHistory()?.calls().length ?? 0, 'dispatched requests').toBe(0);
    expect(agent.pendingInterceptors().length, 'interceptor untouched').toBe(1);
  });

  it('loopback http reaches the dispatcher', async () => {
    const agent = new MockAgent().enableCallHistory();
    agent.disableNetConnect();
    cleanups.push(() => agent.close());
    agent.get(/.*/).intercept({ path: /.*/, method: 'GET' }).reply(200, '{"code":4314,"msg":"not found"}');

    await archive('http://127.0.0.1:9', await tempDir(), { retries: 0, dispatcher: agent });

    expect(agent.getCallHistory()?.calls().length ?? 0).toBe(1);
  });
});
