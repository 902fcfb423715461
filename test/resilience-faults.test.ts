import { readFile, readdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { archiveExecutionOutputs, type ExecutionManifest } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { EXECUTE_ID, executionScenario, nodeText, nodeUuid, TOKEN, WORKFLOW_ID } from './helpers/scenarios.js';

type FaultRule = NonNullable<Scenario['faults']>[number];

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const start = (scenario: Scenario): Promise<FakeCozeServer> => cleanups.server(scenario);

async function archive(server: FakeCozeServer, options: Partial<Parameters<typeof archiveExecutionOutputs>[0]> = {}) {
  const outDir = await cleanups.folder();
  const manifest = await archiveExecutionOutputs({
    token: TOKEN,
    baseUrl: server.url,
    outDir,
    workflowId: WORKFLOW_ID,
    executeId: EXECUTE_ID,
    retries: 3,
    retryMinDelayMs: 5,
    retryMaxDelayMs: 50,
    timeoutMs: 1_000,
    qps: 1_000,
    ...options,
  });
  return { manifest, folder: path.join(outDir, WORKFLOW_ID, EXECUTE_ID) };
}

function entryFor(manifest: ExecutionManifest, index: number) {
  const entry = manifest.nodes.find((node) => node.node_execute_uuid === nodeUuid(index));
  if (entry === undefined) throw new Error(`no manifest entry for node ${index}`);
  return entry;
}

async function expectSavedExactly(folder: string, manifest: ExecutionManifest, index: number, text: string): Promise<void> {
  const entry = entryFor(manifest, index);
  const expected = Buffer.from(text, 'utf8');
  expect(entry.status).toBe('saved');
  const bytes = await readFile(path.join(folder, entry.file!));
  expect(bytes.equals(expected)).toBe(true);
  expect(entry.bytes).toBe(expected.length);
  expect(entry.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
}

const onNode2 = (action: FaultRule['action'], times = 1): FaultRule => ({
  route: 'execute_node',
  nodeExecuteUuid: nodeUuid(2),
  times,
  action,
});

/** Faults after which one retry must save the node byte for byte. */
const RETRIED_FAULTS: Array<[string, FaultRule]> = [
  ['HTTP 429 with Retry-After seconds', onNode2({ type: 'status', status: 429, code: 4020, retryAfter: '0.05' })],
  ['HTTP 429 without Retry-After', onNode2({ type: 'status', status: 429, code: 4020 })],
  ['code 4009 with HTTP 200', onNode2({ type: 'status', status: 200, code: 4009 })],
  ['code 4013 with HTTP 200', onNode2({ type: 'status', status: 200, code: 4013 })],
  ['code 5000 with HTTP 500', onNode2({ type: 'status', status: 500, code: 5000 })],
  ['HTTP 503', onNode2({ type: 'status', status: 503, code: 5000 })],
  ['HTML 502 gateway page', onNode2({ type: 'html', status: 502 })],
  ['2xx body that is not JSON', onNode2({ type: 'invalidJson' })],
  ['truncated JSON', onNode2({ type: 'truncatedJson', fraction: 0.5 })],
  ['reset before headers', onNode2({ type: 'resetBeforeHeaders' })],
  ['reset halfway through the body', onNode2({ type: 'resetMidBody', fraction: 0.5 })],
  ['stall before headers past the timeout', onNode2({ type: 'stallBeforeHeaders', ms: 3_000 })],
  ['stall mid-body past the timeout', onNode2({ type: 'stallMidBody', fraction: 0.5, ms: 3_000 })],
  ['Retry-After as an HTTP date', onNode2({ type: 'status', status: 429, code: 4020, retryAfter: 'Wed, 21 Oct 2015 07:28:00 GMT' })],
  ['negative Retry-After', onNode2({ type: 'status', status: 429, code: 4020, retryAfter: '-5' })],
  ['unparsable Retry-After', onNode2({ type: 'status', status: 503, code: 5000, retryAfter: 'soon' })],
];

describe('retried faults', () => {
  it.each(RETRIED_FAULTS)('%s is retried and saved', async (_name, fault) => {
    const server = await start(executionScenario(3, { faults: [fault] }, () => ({ text: nodeText(2, 4_000) })));
    const { manifest, folder } = await archive(server);

    await expectSavedExactly(folder, manifest, 2, nodeText(2, 4_000));
    expect(entryFor(manifest, 2).attempts).toBe(2);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(2) })).toBe(2);
    expect(manifest.totals.saved).toBe(3);
    expect(await readdir(path.join(folder, 'nodes'))).toHaveLength(3);
  });
});

/** About 1.8 MB with escapes throughout: past the size that streams to a temporary file. */
const LARGE_TEXT = `${nodeText(2, 300)}\n"引号"\t`.repeat(2_000);

// Each fault comes after more than 1 MiB of output has arrived, so the attempt has spilled to a
// temporary file and the client has dropped the raw body: the retry of a truncated body reads it whole.
describe('large output faults', () => {
  it.each([
    ['reset late in the body', onNode2({ type: 'resetMidBody', fraction: 0.8 })],
    ['stall late in the body past the timeout', onNode2({ type: 'stallMidBody', fraction: 0.8, ms: 3_000 })],
    ['truncated JSON', onNode2({ type: 'truncatedJson', fraction: 0.9 })],
  ])('%s leaves no temporary file', async (_name, fault) => {
    const server = await start(executionScenario(3, { faults: [fault] }, (index) => (index === 2 ? { text: LARGE_TEXT } : {})));
    const { manifest, folder } = await archive(server);

    await expectSavedExactly(folder, manifest, 2, LARGE_TEXT);
    expect(Buffer.byteLength(LARGE_TEXT)).toBeGreaterThan(1024 * 1024);
    expect(entryFor(manifest, 2).attempts).toBe(2);
    expect(await readdir(path.join(folder, 'nodes'))).toHaveLength(3);
  });
});

describe('large body cut short', () => {
  it('without retries: unreadable_stream, one request', async () => {
    const server = await start(
      executionScenario(3, { faults: [onNode2({ type: 'truncatedJson', fraction: 0.9 })] }, (index) => (index === 2 ? { text: LARGE_TEXT } : {})),
    );
    const { manifest, folder } = await archive(server, { retries: 0 });
    const entry = entryFor(manifest, 2);

    expect(entry.status).toBe('failed');
    expect(entry.attempts).toBe(1);
    expect(entry.error?.kind).toBe('unreadable_stream');
    expect(entry.error?.http_status).toBe(200);
    expect(entry.error?.logid).toMatch(/^\w{10,}/);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(2) })).toBe(1);
    expect(await readdir(path.join(folder, 'nodes'))).toHaveLength(2);
  });

  it('every time: retries read it whole', async () => {
    const server = await start(
      executionScenario(3, { faults: [onNode2({ type: 'truncatedJson', fraction: 0.9 }, 10)] }, (index) => (index === 2 ? { text: LARGE_TEXT } : {})),
    );
    const { manifest } = await archive(server, { retries: 2 });
    const entry = entryFor(manifest, 2);

    // The first attempt streams; the two retries read the whole body and find it is not JSON.
    expect(entry.status).toBe('failed');
    expect(entry.attempts).toBe(3);
    expect(entry.error?.kind).toBe('invalid_json');
    // The parser's reason names the position where the body went wrong, beyond the first line shown.
    expect(entry.error?.message).toMatch(/not JSON \(Unterminated string in JSON at position \d+\): \{/);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(2) })).toBe(3);
  });
});

/** Responses that another attempt cannot fix: one request, then a failed entry. */
const FINAL_FAULTS: Array<[string, FaultRule, { http_status: number; code: number }]> = [
  ['code 4000 bad parameters', onNode2({ type: 'status', status: 200, code: 4000 }, 5), { http_status: 200, code: 4000 }],
  ['code 4008 daily limit', onNode2({ type: 'status', status: 200, code: 4008 }, 5), { http_status: 200, code: 4008 }],
  ['code 4200 not found', onNode2({ type: 'status', status: 200, code: 4200 }, 5), { http_status: 200, code: 4200 }],
  ['code 4314 for an older execution', onNode2({ type: 'status', status: 200, code: 4314 }, 5), { http_status: 200, code: 4314 }],
  ['HTTP 400 with a Coze code', onNode2({ type: 'status', status: 400, code: 4000 }, 5), { http_status: 400, code: 4000 }],
];

describe('final errors', () => {
  it.each(FINAL_FAULTS)('%s is not retried', async (_name, fault, expected) => {
    const server = await start(executionScenario(3, { faults: [fault] }));
    const { manifest, folder } = await archive(server);
    const entry = entryFor(manifest, 2);

    expect(entry.status).toBe('failed');
    expect(entry.attempts).toBe(1);
    expect(entry.error?.http_status).toBe(expected.http_status);
    expect(entry.error?.code).toBe(expected.code);
    expect(entry.error?.logid).toMatch(/^\w{10,}/);
    expect(entry.file).toBeNull();
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(2) })).toBe(1);
    await expectSavedExactly(folder, manifest, 1, nodeText(1));
  });
});

describe('failure details', () => {
  it('records the last error after retries run out', async () => {
    const server = await start(executionScenario(2, { faults: [onNode2({ type: 'status', status: 500, code: 5000 }, 10)] }));
    const { manifest } = await archive(server, { retries: 2 });
    const entry = entryFor(manifest, 2);

    expect(entry.status).toBe('failed');
    expect(entry.attempts).toBe(3);
    expect(entry.error?.http_status).toBe(500);
    expect(entry.error?.code).toBe(5000);
    expect(entry.error?.logid).toMatch(/^\w{10,}/);
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(2) })).toBe(3);
  });

  it('reports a body that keeps failing to parse with its start', async () => {
    const server = await start(executionScenario(2, { faults: [onNode2({ type: 'invalidJson', body: 'upstream proxy says hello' }, 10)] }));
    const { manifest } = await archive(server, { retries: 1 });
    const entry = entryFor(manifest, 2);

    expect(entry.status).toBe('failed');
    expect(entry.error?.kind).toBe('invalid_json');
    expect(entry.error?.http_status).toBe(200);
    expect(entry.error?.message).toContain('upstream proxy says hello');
    expect(entry.attempts).toBe(2);
  });

  it('never reports a cut body as a schema error', async () => {
    const server = await start(executionScenario(2, { faults: [onNode2({ type: 'resetMidBody', fraction: 0.4 }, 10)] }, () => ({ text: nodeText(2, 8_000) })));
    const { manifest, folder } = await archive(server, { retries: 1 });
    const entry = entryFor(manifest, 2);

    expect(entry.status).toBe('failed');
    expect(entry.error?.kind).toBe('transport');
    expect(entry.attempts).toBe(2);
    expect(await readdir(path.join(folder, 'nodes'))).toHaveLength(1);
  });

  it('fails an item whose Retry-After passes the cap', async () => {
    const server = await start(executionScenario(4, { faults: [onNode2({ type: 'status', status: 429, code: 4020, retryAfter: '120' }, 10)] }));
    const started = Date.now();
    // One request at a time, so nodes 3 and 4 start after the 429. A 120 s pause would hold them.
    const { manifest } = await archive(server, { maxRetryAfterMs: 1_000, concurrency: 1 });
    const entry = entryFor(manifest, 2);

    expect(entry.status).toBe('failed');
    expect(entry.error?.kind).toBe('retry_after_too_long');
    expect(entry.error?.message).toContain('Retry-After');
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(2) })).toBe(1);
    expect(manifest.totals.saved).toBe(3);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('retries 4314 for an execution under a minute old', async () => {
    const scenario = executionScenario(2, { faults: [onNode2({ type: 'status', status: 200, code: 4314 })] });
    scenario.executions![0]!.startedSecondsAgo = 5;
    scenario.executions![0]!.durationSeconds = 1;
    const server = await start(scenario);
    const { manifest, folder } = await archive(server);

    await expectSavedExactly(folder, manifest, 2, nodeText(2));
    expect(entryFor(manifest, 2).attempts).toBe(2);
  });

  it('retries run history after a reset', async () => {
    const server = await start(executionScenario(2, { faults: [{ route: 'run_history', times: 1, action: { type: 'resetBeforeHeaders' } }] }));
    const { manifest } = await archive(server);

    expect(manifest.execute_status).toBe('Success');
    expect(manifest.totals.saved).toBe(2);
    expect(server.countRequests({ route: 'run_history' })).toBe(2);
  });
});

describe('young executions', () => {
  it('retries run-history 4314 for an id minted now', async () => {
    // The tool reads the top 32 bits of an execute id as its start time, so this id is seconds old.
    const youngId = ((BigInt(Math.floor(Date.now() / 1000)) << 32n) | 4_242n).toString();
    const scenario = executionScenario(1, { faults: [{ route: 'run_history', times: 1, action: { type: 'status', status: 200, code: 4314 } }] });
    scenario.executions![0]!.executeId = youngId;
    const server = await start(scenario);
    const { manifest } = await archive(server, { executeId: youngId });

    expect(manifest.execute_status).toBe('Success');
    expect(manifest.totals.saved).toBe(1);
    expect(server.countRequests({ route: 'run_history' })).toBe(2);
  });

  it('does not retry run-history 4314 for an old id', async () => {
    const server = await start(executionScenario(1, { faults: [{ route: 'run_history', times: 1, action: { type: 'status', status: 200, code: 4314 } }] }));
    const { manifest } = await archive(server);

    expect(manifest.error?.code).toBe(4314);
    expect(manifest.execute_status).toBeNull();
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
  });
});
