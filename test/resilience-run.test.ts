import { Writable } from 'node:stream';

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { archiveExecutionOutputs, type ArchiveExecutionOptions } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { EXECUTE_ID, executionScenario, TOKEN, WORKFLOW_ID } from './helpers/scenarios.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const start = (scenario: Scenario): Promise<FakeCozeServer> => cleanups.server(scenario);

/** Archives the test execution from `server` into a fresh folder with the given options. */
async function archiveTestExecution(server: FakeCozeServer, options: Partial<ArchiveExecutionOptions>) {
  return archiveExecutionOutputs({
    token: TOKEN,
    baseUrl: server.url,
    outDir: await cleanups.folder(),
    workflowId: WORKFLOW_ID,
    executeId: EXECUTE_ID,
    ...options,
  });
}


/** Creates a pino logger whose JSON lines land in an array, to count what was logged. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

describe('rate limiting', () => {
  it('keeps every second under --qps', async () => {
    const server = await start(executionScenario(45));
    const started = performance.now();
    const manifest = await archiveTestExecution(server, {
      qps: 15,
      concurrency: 8,
    });
    const elapsedMs = performance.now() - started;

    expect(manifest.totals.saved).toBe(45);
    expect(server.requests).toHaveLength(46);
    expect(server.maxRequestsInWindow(1_000)).toBeLessThanOrEqual(15);
    // 46 requests at 15 per second need at least three full windows after the first burst.
    expect(elapsedMs).toBeGreaterThanOrEqual(2_000);
  });

  it('slows the whole run after over-limit answers', async () => {
    const server = await start(executionScenario(24, { rateLimit: { qps: 8, answer: 'http429' } }));
    const { logger, lines } = capturingLogger();
    const manifest = await archiveTestExecution(server, {
      qps: 40,
      concurrency: 8,
      retries: 10,
      retryMinDelayMs: 50,
      logger,
    });
    // Warned once per run; the further steps are debug lines.
    const slowdowns = lines.filter((line) => line['level'] === 40 && String(line.msg).includes('slowing down'));
    const overLimitRetries = manifest.nodes.filter((node) => node.attempts > 1);

    const retryLines = lines.filter((line) => line.msg === 'request failed; retrying');

    expect(manifest.totals.saved).toBe(24);
    expect(server.overLimitCount()).toBeGreaterThan(0);
    expect(slowdowns).toHaveLength(1);
    // The slowdown's warning stands for the retries after over-limit responses, which log at debug level.
    expect(retryLines.length).toBeGreaterThan(0);
    expect(retryLines.filter((line) => line['level'] !== 20)).toEqual([]);
    expect(overLimitRetries.length).toBeGreaterThan(0);
    // Without the shared pause, each of the 24 nodes would hit the wall several times.
    expect(server.overLimitCount()).toBeLessThan(24);
  });

  it('halves once per overshoot', async () => {
    const server = await start(executionScenario(40, { rateLimit: { qps: 12, answer: 'http429' } }));
    const { logger, lines } = capturingLogger();
    const manifest = await archiveTestExecution(server, { qps: 40, concurrency: 8, retries: 10, retryMinDelayMs: 50, logger });
    const slowedTo = lines.filter((line) => 'slowedToQps' in line).map((line) => line['slowedToQps']);

    expect(manifest.totals.saved).toBe(40);
    expect(server.overLimitCount()).toBeGreaterThan(1);
    // 40 per second overshoots, and so does 20; 10 stays under the server's 12.
    // Halving once per over-limit response would have gone on to the floor of 5.
    expect(slowedTo).toEqual([20, 10]);
  });

  it('treats code 4020 with HTTP 200 as over-limit', async () => {
    const server = await start(executionScenario(20, { rateLimit: { qps: 6, answer: 'code4020' } }));
    const { logger, lines } = capturingLogger();
    const manifest = await archiveTestExecution(server, {
      qps: 30,
      retries: 10,
      retryMinDelayMs: 50,
      logger,
    });

    expect(manifest.totals.saved).toBe(20);
    expect(server.overLimitCount()).toBeGreaterThan(0);
    expect(lines.filter((line) => line['level'] === 40 && String(line.msg).includes('slowing down'))).toHaveLength(1);
  });
});
