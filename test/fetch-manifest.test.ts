import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { ExecutionManifest, ManifestEntry } from '../src/index.js';
import {
  listNodeOutputs,
  loadScenario,
  startFakeCozeServer,
  type ExpectedNodeOutput,
  type FakeCozeServer,
  type Scenario,
} from '../src/fake-server/index.js';
import { makeTempDir, readJson, runCli, type CliResult } from './helpers/run-cli.js';

// These tests run the built CLI (dist/) against the fake Coze server on 127.0.0.1 and read the
// archive it leaves, comparing every file with what the server sent.

const DEMO = 'fixtures/demo.json';
const TOKEN = 'pat_demo_token';
const DEMO_WORKFLOW = '7350000000000000001';
const DEMO_DONE = '7431826405913470001';
const DEMO_TRIMMED_WORKFLOW = '7350000000000000002';
const DEMO_TRIMMED = '7431826405913470002';
const DEMO_RUNNING = '7431826405913470003';
const DEMO_FAILED_WORKFLOW = '7350000000000000003';
const DEMO_FAILED = '7431826405913470004';
const WORKFLOW = '7350000000000000101';
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** One response as it left the fake server, captured between it and the CLI. */
interface Exchange {
  path: string;
  status: number;
  logid: string | undefined;
  body: Buffer;
}

interface RecordingProxy {
  url: string;
  exchanges: Exchange[];
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` and keeps each response's status, `X-Tt-Logid` header
 * and raw body bytes, so a test can compare the archive with exactly what the server sent.
 */
async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const exchanges: Exchange[] = [];
  const server = http.createServer((req, res) => {
    const upstream = http.request(`${target}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (reply) => {
      const chunks: Buffer[] = [];
      reply.on('data', (chunk: Buffer) => chunks.push(chunk));
      reply.on('end', () => {
        const body = Buffer.concat(chunks);
        const logid = reply.headers['x-tt-logid'];
        exchanges.push({ path: req.url ?? '', status: reply.statusCode ?? 0, logid: Array.isArray(logid) ? logid[0] : logid, body });
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        res.end(body);
      });
      reply.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    upstream.end();
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('recording proxy has no TCP address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    exchanges,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

interface Setup {
  server: FakeCozeServer;
  proxy: RecordingProxy;
}

/** Starts the fake server with its clock frozen at the start, and a recording proxy before it. */
async function startServer(scenario: Scenario | string, register = cleanups): Promise<Setup & { startMs: number }> {
  const startMs = Date.now();
  const server = await startFakeCozeServer({ scenario, now: () => startMs });
  const proxy = await startRecordingProxy(server.url);
  register.push(() => proxy.close(), () => server.close());
  return { server, proxy, startMs };
}

interface Archive {
  result: CliResult;
  out: string;
  folder: string;
}

async function newOutDir(register = cleanups): Promise<string> {
  const temp = await makeTempDir('coze-fetch-manifest-');
  register.push(temp.remove);
  return temp.dir;
}

/** Runs `fetch` once for one execution through the proxy. */
/** Returns the source and file of each "output may be incomplete" warning in the CLI's JSON log lines, sorted. */
function incompleteWarnings(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; source?: string; file?: string })
    .filter((line) => line.msg === 'output may be incomplete')
    .map((line) => `${line.source} ${line.file}`)
    .sort();
}

async function fetchExecution(
  proxy: RecordingProxy,
  workflowId: string,
  executeId: string,
  options: { out?: string; extra?: string[]; register?: (() => Promise<void>)[] } = {},
): Promise<Archive> {
  const out = options.out ?? (await newOutDir(options.register));
  const args = [
    'fetch',
    '--base-url', proxy.url,
    '--workflow-id', workflowId,
    '--execute-id', executeId,
    '--out', out,
    '--qps', '200',
    '--retry-min-delay', '10ms',
    ...(options.extra ?? []),
  ];
  const result = await runCli(args, { env: { COZE_API_TOKEN: TOKEN } });
  return { result, out, folder: path.join(out, workflowId, executeId) };
}

/** Reads the archive's manifest. When it is missing, the error shows what the CLI printed. */
async function readManifest(archive: Archive): Promise<ExecutionManifest> {
  const manifestPath = path.join(archive.folder, 'manifest.json');
  if (!existsSync(manifestPath)) {
    throw new Error(`no manifest at ${manifestPath}; CLI exit ${archive.result.code}, stderr:\n${archive.result.stderr}`);
  }
  return readJson<ExecutionManifest>(manifestPath);
}

function entryFor(manifest: ExecutionManifest, uuid: string): ManifestEntry {
  const entry = manifest.nodes.find((node) => node.node_execute_uuid === uuid);
  if (entry === undefined) throw new Error(`manifest has no entry for node_execute_uuid ${uuid}`);
  return entry;
}

function inlineEntry(manifest: ExecutionManifest, title: string): ManifestEntry {
  const entry = manifest.nodes.find((node) => node.source === 'inline' && node.title === title);
  if (entry === undefined) throw new Error(`manifest has no inline entry titled ${title}`);
  return entry;
}

async function readEntryFile(archive: Archive, entry: ManifestEntry): Promise<Buffer> {
  if (entry.file === null) throw new Error(`entry ${entry.title} has no file`);
  return readFile(path.join(archive.folder, entry.file));
}

/** Lists every file under `dir`, relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true });
  const files: string[] = [];
  for (const name of names) {
    if ((await stat(path.join(dir, name))).isFile()) files.push(name);
  }
  return files.sort();
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function runHistoryExchanges(proxy: RecordingProxy, executeId: string): Exchange[] {
  return proxy.exchanges.filter((exchange) => exchange.path.endsWith(`/run_histories/${executeId}`));
}

function nodeExchanges(proxy: RecordingProxy, uuid: string): Exchange[] {
  return proxy.exchanges.filter((exchange) => exchange.path.endsWith(`/execute_nodes/${uuid}`));
}

/** Parses the `output` object of the run-history record exactly as the server sent it. */
function sentOutputObject(exchange: Exchange): Record<string, unknown> {
  const envelope = JSON.parse(exchange.body.toString('utf8')) as { data: { output: string }[] };
  return JSON.parse(envelope.data[0]!.output) as Record<string, unknown>;
}

describe('finished execution archive', () => {
  const hooks: (() => Promise<void>)[] = [];
  let setup: Setup & { startMs: number };
  let archive: Archive;
  let manifest: ExecutionManifest;
  let expected: ExpectedNodeOutput[];
  let sentHistory: Exchange;

  beforeAll(async () => {
    setup = await startServer(DEMO, hooks);
    archive = await fetchExecution(setup.proxy, DEMO_WORKFLOW, DEMO_DONE, { register: hooks });
    manifest = await readManifest(archive);
    expected = listNodeOutputs(DEMO, DEMO_DONE);
    const histories = runHistoryExchanges(setup.proxy, DEMO_DONE);
    expect(histories).toHaveLength(1);
    sentHistory = histories[0]!;
  });

  afterAll(async () => {
    await Promise.all(hooks.splice(0).map((cleanup) => cleanup()));
  });

  it('exits 0 with complete manifest', () => {
    expect(archive.result.code).toBe(0);
    expect(manifest.complete).toBe(true);
  });

  it('keeps the folder layout', async () => {
    const files = await listFiles(archive.folder);
    const expectedFiles = ['execution.json', 'manifest.json', ...manifest.nodes.map((entry) => entry.file!)].sort();
    expect(files).toEqual(expectedFiles);
  });

  it('saves execution.json byte for byte', async () => {
    const saved = await readFile(path.join(archive.folder, 'execution.json'));
    expect(saved.equals(sentHistory.body)).toBe(true);
    expect(manifest.execution_file).toBe('execution.json');
  });

  it('keeps long ids and unknown keys', async () => {
    const text = await readFile(path.join(archive.folder, 'execution.json'), 'utf8');
    expect(text).toContain(`"execute_id":"${DEMO_DONE}"`);
    expect(text).toContain('"sub_execute_id":"7431826405913479001"');

    const record = (JSON.parse(text) as { data: Record<string, unknown>[] }).data[0]!;
    const scenarioRecord = loadScenario(DEMO).executions!.find((execution) => execution.executeId === DEMO_DONE)!.record!;
    expect(record['token']).toBe(scenarioRecord['token']);
    expect(record['cost']).toBe(scenarioRecord['cost']);
  });

  it('saves node_output bytes exactly', async () => {
    for (const node of expected) {
      const saved = await readEntryFile(archive, entryFor(manifest, node.nodeExecuteUuid));
      expect(saved.equals(Buffer.from(node.text(), 'utf8')), `file of ${node.key}`).toBe(true);
    }
  });

  it('writes no byte order mark', async () => {
    for (const entry of manifest.nodes) {
      const saved = await readEntryFile(archive, entry);
      expect(saved.subarray(0, 3).equals(UTF8_BOM), `file of ${entry.title}`).toBe(false);
    }
  });

  it('saves every inline output', async () => {
    const output = sentOutputObject(sentHistory);
    const titles = Object.keys(output).filter((key) => key !== 'node_status');
    const inline = manifest.nodes.filter((entry) => entry.source === 'inline');
    expect(inline.map((entry) => entry.title).sort()).toEqual(titles.sort());

    for (const title of titles) {
      const saved = await readEntryFile(archive, inlineEntry(manifest, title));
      expect(saved.equals(Buffer.from(output[title] as string, 'utf8')), `inline ${title}`).toBe(true);
    }
  });

  it('records node run fields', () => {
    const nodeEntries = manifest.nodes.filter((entry) => entry.source === 'execute_nodes');
    expect(nodeEntries).toHaveLength(expected.length);

    for (const node of expected) {
      const entry = entryFor(manifest, node.nodeExecuteUuid);
      expect(entry.node_id).toBe(node.nodeId);
      expect(entry.title).toBe(node.key);
      expect(entry.loop_index).toBe(node.loopIndex ?? null);
      expect(entry.batch_index).toBe(node.batchIndex ?? null);
      expect(entry.sub_execute_id).toBe(node.subExecuteId);
      expect(entry.source).toBe('execute_nodes');
      expect(entry.status).toBe('saved');
      expect(entry.is_finish).toBe(node.isFinish);
      expect(entry.attempts).toBe(1);
      expect(entry.error).toBeUndefined();
    }
  });

  it('keeps random loop keys as titles', () => {
    const repeats = expected.filter((node) => node.loopIndex !== undefined && node.loopIndex > 0);
    expect(repeats.length).toBeGreaterThan(0);
    for (const node of repeats) {
      expect(entryFor(manifest, node.nodeExecuteUuid).title).toBe(node.key);
    }
  });

  it('omits uuid on inline entries', () => {
    for (const entry of manifest.nodes.filter((node) => node.source === 'inline')) {
      expect('node_execute_uuid' in entry, entry.title).toBe(false);
      expect(entry.node_id).toBeNull();
      expect(entry.status).toBe('saved');
    }
  });

  it('records bytes and sha256', async () => {
    for (const entry of manifest.nodes) {
      expect(path.isAbsolute(entry.file!), entry.title).toBe(false);
      const saved = await readEntryFile(archive, entry);
      expect(entry.bytes, entry.title).toBe(Buffer.byteLength(saved.toString('utf8'), 'utf8'));
      expect(entry.bytes, entry.title).toBe(saved.length);
      expect(entry.sha256, entry.title).toBe(sha256(saved));
    }
  });

  it('records top-level execution fields', () => {
    const scenario = loadScenario(DEMO).executions!.find((execution) => execution.executeId === DEMO_DONE)!;
    const record = (JSON.parse(sentHistory.body.toString('utf8')) as { data: Record<string, unknown>[] }).data[0]!;
    const createTime = Math.floor(setup.startMs / 1000) - scenario.startedSecondsAgo!;

    expect(manifest.workflow_id).toBe(DEMO_WORKFLOW);
    expect(manifest.execute_id).toBe(DEMO_DONE);
    expect(manifest.execute_status).toBe('Success');
    expect(manifest.create_time).toBe(createTime);
    expect(manifest.update_time).toBe(createTime + scenario.durationSeconds!);
    expect(manifest.execution_logid).toBe(record['logid']);
    expect(manifest.error_code).toBe('');
    expect(manifest.error_message).toBeNull();
    expect(manifest.error).toBeUndefined();
  });

  it('stamps the last version with the finish time', () => {
    expect(manifest.finished_at).not.toBeNull();
    expect(manifest.updated_at).toBe(manifest.finished_at);
    expect(Date.parse(manifest.started_at)).toBeLessThanOrEqual(Date.parse(manifest.finished_at!));
  });

  it('records the sent X-Tt-Logid', () => {
    expect(sentHistory.logid).toMatch(/^\d{14}[0-9A-F]{20}$/);
    expect(manifest.run_history_logid).toBe(sentHistory.logid);
  });

  it('adds up totals', () => {
    const savedBytes = manifest.nodes.reduce((sum, entry) => sum + (entry.bytes ?? 0), 0);
    expect(manifest.totals.entries).toBe(manifest.nodes.length);
    expect(manifest.totals.saved).toBe(manifest.nodes.length);
    expect(manifest.totals.failed).toBe(0);
    expect(manifest.totals.pending).toBe(0);
    expect(manifest.totals.expired).toBe(0);
    expect(manifest.totals.flagged).toBe(manifest.nodes.filter((entry) => entry.possibly_incomplete).length);
    expect(manifest.totals.bytes).toBe(savedBytes);
  });

  it('flags the long Chinese node twice', async () => {
    const longNode = expected.find((node) => node.text().length === 400_000)!;
    const entry = entryFor(manifest, longNode.nodeExecuteUuid);
    const saved = await readEntryFile(archive, entry);

    expect(entry.bytes).toBe(Buffer.byteLength(longNode.text(), 'utf8'));
    expect(saved.toString('utf8')).toHaveLength(400_000);
    expect(entry.possibly_incomplete).toBe(true);
    expect(entry.incomplete_reasons).toEqual(['size_at_least_1000000_bytes', 'size_at_least_1048576_bytes']);
  });

  it('warns once per flagged entry', () => {
    const flagged = manifest.nodes.filter((entry) => entry.possibly_incomplete);

    expect(flagged.length).toBeGreaterThan(0);
    expect(incompleteWarnings(archive.result.stderr)).toEqual(flagged.map((entry) => `${entry.source} ${entry.file}`).sort());
  });

  it('flags is_finish false', () => {
    const unfinished = expected.filter((node) => !node.isFinish);
    expect(unfinished.length).toBeGreaterThan(0);
    for (const node of unfinished) {
      const entry = entryFor(manifest, node.nodeExecuteUuid);
      expect(entry.possibly_incomplete).toBe(true);
      expect(entry.incomplete_reasons).toEqual(['is_finish_false']);
    }
  });

  it('leaves small finished nodes unflagged', () => {
    const small = expected.filter((node) => node.isFinish && Buffer.byteLength(node.text(), 'utf8') < 1_000_000);
    for (const node of small) {
      const entry = entryFor(manifest, node.nodeExecuteUuid);
      expect(entry.possibly_incomplete, node.key).toBe(false);
      expect(entry.incomplete_reasons, node.key).toEqual([]);
    }
  });

  it('writes the manifest last', async () => {
    const manifestTime = (await stat(path.join(archive.folder, 'manifest.json'), { bigint: true })).mtimeNs;
    for (const file of await listFiles(archive.folder)) {
      const fileTime = (await stat(path.join(archive.folder, file), { bigint: true })).mtimeNs;
      expect(fileTime <= manifestTime, file).toBe(true);
    }
  });

  it('leaves no temporary files', async () => {
    const leftovers = (await listFiles(archive.out)).filter((file) => /\.tmp-/.test(file));
    expect(leftovers).toEqual([]);
  });

  it('requests each node run once', () => {
    expect(setup.server.countRequests({ route: 'run_history' })).toBe(1);
    expect(setup.server.countRequests({ route: 'execute_node' })).toBe(expected.length);
    for (const node of expected) {
      expect(setup.server.countRequests({ nodeExecuteUuid: node.nodeExecuteUuid }), node.key).toBe(1);
    }
  });
});

describe('execution states', () => {
  it('trimmed output flags inline entries', async () => {
    const { server, proxy } = await startServer(DEMO);
    const archive = await fetchExecution(proxy, DEMO_TRIMMED_WORKFLOW, DEMO_TRIMMED);
    const manifest = await readManifest(archive);
    const output = sentOutputObject(runHistoryExchanges(proxy, DEMO_TRIMMED)[0]!);

    expect(archive.result.code).toBe(0);
    expect(manifest.is_output_trimmed).toBe(true);
    expect(manifest.nodes).toHaveLength(Object.keys(output).length);
    for (const entry of manifest.nodes) {
      expect(entry.source).toBe('inline');
      expect(entry.incomplete_reasons).toEqual(['output_trimmed']);
      expect(entry.possibly_incomplete).toBe(true);
      expect((await readEntryFile(archive, entry)).equals(Buffer.from(output[entry.title] as string, 'utf8'))).toBe(true);
    }
    expect(incompleteWarnings(archive.result.stderr)).toEqual(manifest.nodes.map((entry) => `inline ${entry.file}`).sort());
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });

  it('running execution exits 4', async () => {
    const { server, proxy } = await startServer(DEMO);
    const archive = await fetchExecution(proxy, DEMO_WORKFLOW, DEMO_RUNNING);
    const manifest = await readManifest(archive);
    const nodes = listNodeOutputs(DEMO, DEMO_RUNNING);
    const finished = nodes.filter((node) => node.isFinish);
    const unfinished = nodes.filter((node) => !node.isFinish);

    expect(archive.result.code).toBe(4);
    expect(manifest.execute_status).toBe('Running');
    expect(manifest.complete).toBe(false);
    for (const node of finished) {
      const entry = entryFor(manifest, node.nodeExecuteUuid);
      expect(entry.status).toBe('saved');
      expect((await readEntryFile(archive, entry)).equals(Buffer.from(node.text(), 'utf8'))).toBe(true);
    }
    for (const node of unfinished) {
      const entry = entryFor(manifest, node.nodeExecuteUuid);
      expect(entry.status).toBe('pending');
      expect(entry.file).toBeNull();
      expect(server.countRequests({ nodeExecuteUuid: node.nodeExecuteUuid })).toBe(0);
    }
    expect(manifest.totals.pending).toBe(unfinished.length);
  });

  it('failed execution exits 0', async () => {
    const { proxy } = await startServer(DEMO);
    const archive = await fetchExecution(proxy, DEMO_FAILED_WORKFLOW, DEMO_FAILED);
    const manifest = await readManifest(archive);
    const record = loadScenario(DEMO).executions!.find((execution) => execution.executeId === DEMO_FAILED)!.record!;

    expect(archive.result.code).toBe(0);
    expect(manifest.execute_status).toBe('Fail');
    expect(manifest.error_code).toBe(record['error_code']);
    expect(manifest.error_message).toBe(record['error_message']);
    for (const node of listNodeOutputs(DEMO, DEMO_FAILED)) {
      const entry = entryFor(manifest, node.nodeExecuteUuid);
      expect(entry.status).toBe('saved');
      expect((await readEntryFile(archive, entry)).equals(Buffer.from(node.text(), 'utf8'))).toBe(true);
    }
    expect(manifest.totals.saved).toBe(manifest.totals.entries);
  });

  it('missing execution records error', async () => {
    const { server, proxy } = await startServer(DEMO);
    const archive = await fetchExecution(proxy, DEMO_WORKFLOW, '7431826405913479999', { extra: ['--retries', '1'] });
    const manifest = await readManifest(archive);
    const sent = runHistoryExchanges(proxy, '7431826405913479999').at(-1)!;

    expect(archive.result.code).toBe(1);
    expect(manifest.execute_status).toBeNull();
    expect(manifest.error?.code).toBe(4314);
    expect(manifest.error?.http_status).toBe(200);
    expect(manifest.error?.logid).toBe(sent.logid);
    expect(manifest.nodes).toEqual([]);
    expect(existsSync(path.join(archive.folder, 'execution.json'))).toBe(false);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });
});

describe('incomplete flags', () => {
  const sizes = [999_999, 1_000_000, 1_048_575, 1_048_576];
  const sizeScenario: Scenario = {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW,
        executeId: '7431826405913471001',
        nodes: sizes.map((bytes, index) => ({
          key: `size-${bytes}`,
          nodeId: String(500 + index),
          nodeExecuteUuid: `5a1e0000-0000-4000-8000-00000000000${index}`,
          generate: { text: 'ascii' as const, bytes },
        })),
      },
    ],
  };

  it('flags by both 1 MB readings', async () => {
    const { proxy } = await startServer(sizeScenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471001');
    const manifest = await readManifest(archive);
    const reasonsBySize = new Map(manifest.nodes.map((entry) => [entry.bytes, entry.incomplete_reasons]));

    expect(archive.result.code).toBe(0);
    expect(reasonsBySize.get(999_999)).toEqual([]);
    expect(reasonsBySize.get(1_000_000)).toEqual(['size_at_least_1000000_bytes']);
    expect(reasonsBySize.get(1_048_575)).toEqual(['size_at_least_1000000_bytes']);
    expect(reasonsBySize.get(1_048_576)).toEqual(['size_at_least_1000000_bytes', 'size_at_least_1048576_bytes']);
    expect(manifest.totals.flagged).toBe(3);
  });

  it('flag-bytes 500 flags small nodes', async () => {
    const scenario: Scenario = {
      token: TOKEN,
      executions: [
        {
          workflowId: WORKFLOW,
          executeId: '7431826405913471002',
          nodes: [
            { key: '短', nodeId: '510', nodeExecuteUuid: '5b000000-0000-4000-8000-000000000001', generate: { text: 'ascii', bytes: 499 } },
            { key: '长', nodeId: '511', nodeExecuteUuid: '5b000000-0000-4000-8000-000000000002', generate: { text: 'ascii', bytes: 500 } },
          ],
        },
      ],
    };
    const { server, proxy } = await startServer(scenario);
    // A size listed twice flags once.
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471002', { extra: ['--flag-bytes', '500,500'] });
    const manifest = await readManifest(archive);

    expect(archive.result.code).toBe(0);
    expect(entryFor(manifest, '5b000000-0000-4000-8000-000000000001').incomplete_reasons).toEqual([]);
    expect(entryFor(manifest, '5b000000-0000-4000-8000-000000000002').incomplete_reasons).toEqual(['size_at_least_500_bytes']);
    expect(entryFor(manifest, '5b000000-0000-4000-8000-000000000002').possibly_incomplete).toBe(true);

    // A re-run with other thresholds keeps the files and flags them by the new ones.
    const requestsBefore = server.requests.length;
    const rerun = await fetchExecution(proxy, WORKFLOW, '7431826405913471002', { out: archive.out, extra: ['--flag-bytes', '499'] });
    const reflagged = await readManifest(rerun);

    expect(rerun.result.code).toBe(0);
    // The run history only: both files are kept.
    expect(server.requests.length - requestsBefore).toBe(1);
    expect(reflagged.nodes.map((entry) => [entry.incomplete_reasons, entry.possibly_incomplete, entry.sha256])).toEqual([
      [['size_at_least_499_bytes'], true, entryFor(manifest, '5b000000-0000-4000-8000-000000000001').sha256],
      [['size_at_least_499_bytes'], true, entryFor(manifest, '5b000000-0000-4000-8000-000000000002').sha256],
    ]);
    expect(reflagged.totals.flagged).toBe(2);
  });
});

describe('node discovery and names', () => {
  it('deduplicates keys sharing a uuid', async () => {
    const shared = '6c000000-0000-4000-8000-000000000001';
    const other = '6c000000-0000-4000-8000-000000000002';
    const statusEntry = (nodeId: string, uuid: string) => ({ node_id: nodeId, is_finish: true, update_time: 1_760_000_000, node_execute_uuid: uuid });
    const scenario: Scenario = {
      token: TOKEN,
      executions: [
        {
          workflowId: WORKFLOW,
          executeId: '7431826405913471003',
          record: {
            node_execute_status: {
              摘要: statusEntry('600', shared),
              Fk20QwE7rT5yUi9O: statusEntry('600', shared),
              Gh31ReF8sY6zVj0P: statusEntry('601', other),
            },
          },
          nodes: [
            { key: '摘要', nodeId: '600', nodeExecuteUuid: shared, text: '同一次运行出现在两个键下。' },
            { key: 'other', nodeId: '601', nodeExecuteUuid: other, text: 'second run' },
          ],
        },
      ],
    };
    const { server, proxy } = await startServer(scenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471003');
    const manifest = await readManifest(archive);

    expect(archive.result.code).toBe(0);
    expect(manifest.nodes.filter((entry) => entry.node_execute_uuid === shared)).toHaveLength(1);
    expect(manifest.nodes).toHaveLength(2);
    expect(server.countRequests({ nodeExecuteUuid: shared })).toBe(1);
    expect(entryFor(manifest, shared).title).toBe('摘要');
    expect(entryFor(manifest, other).title).toBe('Gh31ReF8sY6zVj0P');
    expect((await readEntryFile(archive, entryFor(manifest, other))).toString('utf8')).toBe('second run');
  });

  it('keeps colliding names apart', async () => {
    // Same node id and the same first 8 uuid characters, so only the title distinguishes the names.
    const uuid = (n: number) => `abcdef01-0000-4000-8000-00000000000${n}`;
    const scenario: Scenario = {
      token: TOKEN,
      executions: [
        {
          workflowId: WORKFLOW,
          executeId: '7431826405913471004',
          record: { output: { Output: 'end', Report: 'inline upper', report: 'inline lower' } },
          nodes: [
            { key: 'Report', nodeId: '700', nodeExecuteUuid: uuid(1), loopIndex: 0, text: 'upper case title' },
            { key: 'report', nodeId: '700', nodeExecuteUuid: uuid(2), loopIndex: 0, text: 'lower case title' },
            { key: 'Zq81LmX0pVb3NcT7', nodeId: '700', nodeExecuteUuid: uuid(3), loopIndex: 1, text: 'loop repeat one' },
            { key: 'zQ81lMx0PvB3nCt7', nodeId: '700', nodeExecuteUuid: uuid(4), loopIndex: 1, text: 'loop repeat two' },
          ],
        },
      ],
    };
    const { proxy } = await startServer(scenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471004');
    const manifest = await readManifest(archive);
    const folded = new Set(manifest.nodes.map((entry) => entry.file!.toLowerCase()));

    expect(archive.result.code).toBe(0);
    expect(manifest.nodes).toHaveLength(7);
    expect(folded.size).toBe(manifest.nodes.length);
    for (const node of listNodeOutputs(scenario, '7431826405913471004')) {
      const saved = await readEntryFile(archive, entryFor(manifest, node.nodeExecuteUuid));
      expect(saved.toString('utf8'), node.key).toBe(node.text());
    }
    expect((await readEntryFile(archive, inlineEntry(manifest, 'Report'))).toString('utf8')).toBe('inline upper');
    expect((await readEntryFile(archive, inlineEntry(manifest, 'report'))).toString('utf8')).toBe('inline lower');
  });

  it('keeps traversal titles inside', async () => {
    const title = '../../etc/x';
    const uuid = '7d000000-0000-4000-8000-000000000001';
    const scenario: Scenario = {
      token: TOKEN,
      executions: [
        {
          workflowId: WORKFLOW,
          executeId: '7431826405913471005',
          record: { output: { Output: 'end', [title]: 'inline traversal text' } },
          nodes: [{ key: title, nodeId: '800', nodeExecuteUuid: uuid, text: 'node traversal text' }],
        },
      ],
    };
    const { proxy } = await startServer(scenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471005');
    const manifest = await readManifest(archive);
    const outsideFiles = (await listFiles(archive.out)).filter((file) => !file.startsWith(path.join(WORKFLOW, '7431826405913471005') + path.sep));

    expect(archive.result.code).toBe(0);
    expect(outsideFiles).toEqual([]);
    for (const entry of [entryFor(manifest, uuid), inlineEntry(manifest, title)]) {
      const resolved = path.resolve(archive.folder, entry.file!);
      expect(resolved.startsWith(archive.folder + path.sep), entry.file!).toBe(true);
      expect(entry.title).toBe(title);
    }
    expect((await readEntryFile(archive, entryFor(manifest, uuid))).toString('utf8')).toBe('node traversal text');
    expect((await readEntryFile(archive, inlineEntry(manifest, title))).toString('utf8')).toBe('inline traversal text');
  });

  it('stores unusual text unchanged', async () => {
    const text = 'cafe\u0301 and café\r\nline two\u2028tab\there 🙂 \u00a0end\n';
    const uuid = '8e000000-0000-4000-8000-000000000001';
    const scenario: Scenario = {
      token: TOKEN,
      executions: [
        { workflowId: WORKFLOW, executeId: '7431826405913471006', nodes: [{ key: 'mixed', nodeId: '900', nodeExecuteUuid: uuid, text }] },
      ],
    };
    const { proxy } = await startServer(scenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471006');
    const manifest = await readManifest(archive);
    const saved = await readEntryFile(archive, entryFor(manifest, uuid));

    expect(archive.result.code).toBe(0);
    expect(saved.equals(Buffer.from(text, 'utf8'))).toBe(true);
    expect(entryFor(manifest, uuid).bytes).toBe(Buffer.byteLength(text, 'utf8'));
  });
});

describe('request errors', () => {
  const ok = '9f000000-0000-4000-8000-000000000001';
  const rejected = '9f000000-0000-4000-8000-000000000002';
  const broken = '9f000000-0000-4000-8000-000000000003';
  const errorScenario: Scenario = {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW,
        executeId: '7431826405913471007',
        nodes: [
          { key: 'ok', nodeId: '910', nodeExecuteUuid: ok, text: 'fine' },
          { key: 'rejected', nodeId: '911', nodeExecuteUuid: rejected, text: 'never served' },
          { key: 'broken', nodeId: '912', nodeExecuteUuid: broken, text: 'never served either' },
        ],
      },
    ],
    faults: [
      { route: 'execute_node', nodeExecuteUuid: rejected, action: { type: 'status', status: 200, code: 4000, msg: 'node_execute_uuid is invalid' } },
      { route: 'execute_node', nodeExecuteUuid: broken, action: { type: 'status', status: 500, code: 5000 } },
    ],
  };

  it('code with HTTP 200 fails entry', async () => {
    const { proxy } = await startServer(errorScenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471007', { extra: ['--retries', '1'] });
    const manifest = await readManifest(archive);
    const entry = entryFor(manifest, rejected);

    expect(archive.result.code).toBe(1);
    expect(entry.status).toBe('failed');
    expect(entry.file).toBeNull();
    expect(entry.attempts).toBe(1);
    expect(entry.error?.http_status).toBe(200);
    expect(entry.error?.code).toBe(4000);
    expect(entry.error?.msg).toBe('node_execute_uuid is invalid');
    expect(entry.error?.logid).toBe(nodeExchanges(proxy, rejected)[0]!.logid);
  });

  it('retried failure keeps last logid', async () => {
    const { server, proxy } = await startServer(errorScenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471007', { extra: ['--retries', '1'] });
    const manifest = await readManifest(archive);
    const entry = entryFor(manifest, broken);
    const sent = nodeExchanges(proxy, broken);

    expect(server.countRequests({ nodeExecuteUuid: broken })).toBe(2);
    expect(entry.status).toBe('failed');
    expect(entry.attempts).toBe(2);
    expect(entry.error?.http_status).toBe(500);
    expect(entry.error?.code).toBe(5000);
    expect(entry.error?.logid).toBe(sent.at(-1)!.logid);
    expect(entryFor(manifest, ok).status).toBe('saved');
    expect(manifest.totals.failed).toBe(2);
    expect(manifest.complete).toBe(false);
  });

  it('run history code fails execution', async () => {
    const scenario: Scenario = {
      token: TOKEN,
      executions: [{ workflowId: WORKFLOW, executeId: '7431826405913471008', nodes: [{ key: 'a', nodeId: '920', nodeExecuteUuid: ok, text: 'x' }] }],
      faults: [{ route: 'run_history', action: { type: 'status', status: 200, code: 5000, msg: 'internal error' } }],
    };
    const { server, proxy } = await startServer(scenario);
    const archive = await fetchExecution(proxy, WORKFLOW, '7431826405913471008', { extra: ['--retries', '1'] });
    const manifest = await readManifest(archive);

    expect(archive.result.code).toBe(1);
    expect(server.countRequests({ route: 'run_history' })).toBe(2);
    expect(manifest.error?.code).toBe(5000);
    expect(manifest.error?.http_status).toBe(200);
    expect(manifest.error?.logid).toBe(runHistoryExchanges(proxy, '7431826405913471008').at(-1)!.logid);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });
});

describe('rerun and resume', () => {
  const first = 'a1000000-0000-4000-8000-000000000001';
  const second = 'a1000000-0000-4000-8000-000000000002';
  const third = 'a1000000-0000-4000-8000-000000000003';
  const executeId = '7431826405913471009';
  const scenario: Scenario = {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW,
        executeId,
        record: { output: { Output: '{"done":true}' } },
        nodes: [
          { key: '第一', nodeId: '930', nodeExecuteUuid: first, text: '第一个输出。' },
          { key: '第二', nodeId: '931', nodeExecuteUuid: second, generate: { text: 'chinese', chars: 2000 } },
          { key: '第三', nodeId: '932', nodeExecuteUuid: third, text: 'third output' },
        ],
      },
    ],
  };

  it('rerun skips saved entries', async () => {
    const { server, proxy } = await startServer(scenario);
    const firstRun = await fetchExecution(proxy, WORKFLOW, executeId);
    const firstManifest = await readManifest(firstRun);
    const secondRun = await fetchExecution(proxy, WORKFLOW, executeId, { out: firstRun.out });
    const secondManifest = await readManifest(secondRun);

    expect(firstRun.result.code).toBe(0);
    expect(secondRun.result.code).toBe(0);
    expect(server.countRequests({ route: 'execute_node' })).toBe(3);
    expect(server.countRequests({ route: 'run_history' })).toBe(2);
    expect(secondManifest.totals.saved).toBe(4);
    expect(secondManifest.nodes.map((entry) => [entry.title, entry.file, entry.sha256])).toEqual(
      firstManifest.nodes.map((entry) => [entry.title, entry.file, entry.sha256]),
    );
  });

  it('rerun logs each file it repairs', async () => {
    const { server, proxy } = await startServer(scenario);
    const firstRun = await fetchExecution(proxy, WORKFLOW, executeId);
    const edited = entryFor(await readManifest(firstRun), third);
    await writeFile(path.join(firstRun.folder, edited.file!), 'edited by hand');
    const repaired = await fetchExecution(proxy, WORKFLOW, executeId, { out: firstRun.out });
    const logLines = repaired.result.stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);

    expect(repaired.result.code).toBe(0);
    expect(server.countRequests({ nodeExecuteUuid: third })).toBe(2);
    expect(logLines.filter((line) => line.msg === 'saved file is missing or altered; fetching it again')).toEqual([
      expect.objectContaining({ level: 30, title: '第三', file: edited.file }),
    ]);
    expect(entryFor(await readManifest(repaired), third).sha256).toBe(edited.sha256);
  });

  it('force refetches every node', async () => {
    const { server, proxy } = await startServer(scenario);
    const firstRun = await fetchExecution(proxy, WORKFLOW, executeId);
    const forced = await fetchExecution(proxy, WORKFLOW, executeId, { out: firstRun.out, extra: ['--force'] });
    const manifest = await readManifest(forced);

    expect(forced.result.code).toBe(0);
    for (const uuid of [first, second, third]) {
      expect(server.countRequests({ nodeExecuteUuid: uuid })).toBe(2);
    }
    expect(manifest.totals.saved).toBe(4);
    expect((await listFiles(firstRun.out)).filter((file) => /\.tmp-/.test(file))).toEqual([]);
  });

  it('resume fetches only failed node', async () => {
    const flaky: Scenario = {
      ...scenario,
      faults: [{ route: 'execute_node', nodeExecuteUuid: second, times: 1, action: { type: 'status', status: 503, code: 5000 } }],
    };
    const { server, proxy } = await startServer(flaky);
    const firstRun = await fetchExecution(proxy, WORKFLOW, executeId, { extra: ['--retries', '0'] });
    const resumed = await fetchExecution(proxy, WORKFLOW, executeId, { out: firstRun.out, extra: ['--retries', '0'] });
    const manifest = await readManifest(resumed);
    const expected = listNodeOutputs(scenario, executeId).find((node) => node.nodeExecuteUuid === second)!;

    expect(firstRun.result.code).toBe(1);
    expect(resumed.result.code).toBe(0);
    expect(server.countRequests({ nodeExecuteUuid: first })).toBe(1);
    expect(server.countRequests({ nodeExecuteUuid: second })).toBe(2);
    expect(server.countRequests({ nodeExecuteUuid: third })).toBe(1);
    expect((await readEntryFile(resumed, entryFor(manifest, second))).equals(Buffer.from(expected.text(), 'utf8'))).toBe(true);
  });
});
