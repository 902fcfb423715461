import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';

import { afterEach, describe, expect, it } from 'vitest';

import { outputFileName } from '../src/archive/file-names.js';
import { summaryTable } from '../src/batch/batch-summary.js';
import { createProgressDisplay, formatBytes, wantsProgressBar } from '../src/batch/progress-bar.js';
import { createLogger } from '../src/logger.js';
import { archiveExecutionOutputs, archiveExecutions, AuthError, ProgressTracker, runBatch, UsageError, type BatchOptions, type ProgressEvent } from '../src/index.js';
import type { FakeCozeServer } from '../src/fake-server/index.js';
import {
  BATCH_TOKEN,
  BATCH_WORKFLOW,
  batchScenario,
  Cleanups,
  expiredExecution,
  IDS,
  nearExpiryExecution,
  runningExecution,
  savedExecution,
} from './helpers/batch-fixtures.js';

// The batch library API in-process against the fake Coze server on 127.0.0.1: waiting with
// backoff, expiry, ordering, progress events and errors that stop the batch.

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Writes a file named not-a-folder in `folder`, for options that must name a folder, and returns its path. */
function fileInside(folder: string): string {
  const file = path.join(folder, 'not-a-folder');
  writeFileSync(file, 'x');
  return file;
}

async function options(server: FakeCozeServer, executeIds: string[], extra: Partial<BatchOptions> = {}): Promise<BatchOptions & { outDir: string }> {
  return {
    token: BATCH_TOKEN,
    baseUrl: server.url,
    outDir: await cleanups.folder(),
    qps: 200,
    retryMinDelayMs: 10,
    executions: executeIds.map((executeId) => ({ workflowId: BATCH_WORKFLOW, executeId })),
    ...extra,
  };
}

/** Arrival times of the run-history requests of one execution, in milliseconds. */
function runHistoryTimes(server: FakeCozeServer, executeId: string): number[] {
  return server.requests.filter((request) => request.route === 'run_history' && request.executeId === executeId).map((request) => request.receivedAt);
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((time, index) => time - times[index]!);
}

describe('waiting for running executions', () => {
  it('backs off up to the cap', async () => {
    const running = { ...runningExecution(), timeline: { finishAfterPolls: 4 } };
    const server = await cleanups.server(batchScenario([running]));
    const poll = { initialDelayMs: 30, maxDelayMs: 40 };

    const result = await runBatch(await options(server, [IDS.running], { waitMs: 10_000, poll }));
    const outcome = result.executions[0]!;
    const between = gaps(runHistoryTimes(server, IDS.running));

    expect(result.exitCode).toBe(0);
    expect(outcome.polls).toBe(4);
    expect(outcome.manifest!.execute_status).toBe('Success');
    expect(outcome.manifest!.totals).toMatchObject({ entries: 2, saved: 2 });
    // The first read and four polls; the archive pass reuses the last poll.
    expect(between).toHaveLength(4);
    expect(between[0]).toBeGreaterThanOrEqual(27);
    // Uncapped, the waits would be 30, 60, 120 and 240 ms.
    for (const gap of between.slice(1, 4)) {
      expect(gap).toBeGreaterThanOrEqual(36);
      expect(gap).toBeLessThan(200);
    }
    expect(server.countRequests({ route: 'execute_node', nodeExecuteUuid: `${IDS.running}-a` })).toBe(1);
  });

  it('stops at the deadline', async () => {
    const running = { ...runningExecution(), timeline: { finishAfterPolls: 1_000 } };
    const server = await cleanups.server(batchScenario([running]));
    const started = Date.now();

    const result = await runBatch(await options(server, [IDS.running], { waitMs: 300, poll: { initialDelayMs: 40, maxDelayMs: 80 } }));
    const outcome = result.executions[0]!;

    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result.exitCode).toBe(4);
    expect(outcome.manifest!.execute_status).toBe('Running');
    expect(outcome.polls).toBeGreaterThanOrEqual(2);
    // The first read and every poll; the archive pass at the deadline reuses the last poll.
    expect(server.countRequests({ route: 'run_history' })).toBe(outcome.polls + 1);
    expect(outcome.manifest!.nodes.find((node) => node.node_execute_uuid === `${IDS.running}-a`)!.status).toBe('saved');
  });

  it('warns when archiving used up the wait', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), runningExecution()]));
    const logged = new PassThrough();
    const lines: string[] = [];
    logged.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== '')));

    // The deadline passes while the two executions are archived, before any poll.
    const logger = createLogger({ level: 'warn', destination: logged });
    const result = await runBatch(await options(server, [IDS.saved, IDS.running], { waitMs: 1, logger }));
    const running = result.executions.find((outcome) => outcome.executeId === IDS.running)!;
    const warnings = lines.map((line) => JSON.parse(line) as { msg: string; executeId?: string; polls?: number });

    expect(result.exitCode).toBe(4);
    expect(running.polls).toBe(0);
    expect(warnings.filter((warning) => warning.msg.startsWith('execution still running at the --wait deadline'))).toEqual([
      expect.objectContaining({ executeId: IDS.running, polls: 0 }),
    ]);
  });

  it('no wait leaves it pending', async () => {
    const server = await cleanups.server(batchScenario([runningExecution()]));

    const result = await runBatch(await options(server, [IDS.running]));

    expect(result.exitCode).toBe(4);
    expect(result.executions[0]!.polls).toBe(0);
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
  });
});

/** Creates a logger at warn level whose messages the test reads back. */
function loggedMessages(): { logger: ReturnType<typeof createLogger>; messages: () => string[] } {
  const logged = new PassThrough();
  const lines: string[] = [];
  logged.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== '')));
  const logger = createLogger({ level: 'warn', destination: logged });
  return { logger, messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

describe('expiry', () => {
  it('every expiry answer is expired', async () => {
    const ids = ['7431826405913473011', '7431826405913473012', '7431826405913473013'];
    const server = await cleanups.server(
      batchScenario([expiredExecution(ids[0], 'code4200'), expiredExecution(ids[1], 'code4314'), expiredExecution(ids[2], 'emptyOutput')]),
    );

    const result = await runBatch(await options(server, ids));

    expect(result.exitCode).toBe(1);
    for (const outcome of result.executions) {
      expect(outcome.expiryWarning).toBe(true);
      expect(outcome.manifest!.totals).toMatchObject({ entries: 1, saved: 0, failed: 0, expired: 1 });
      expect(outcome.manifest!.nodes[0]!.status).toBe('expired');
      expect(outcome.manifest!.nodes[0]!.file).toBeNull();
    }
    // Neither code is retried for an execution this old.
    expect(server.countRequests({ route: 'execute_node' })).toBe(3);
  });

  it('expired outputs are not requested again', async () => {
    const server = await cleanups.server(batchScenario([expiredExecution()]));

    const sameFolder = await options(server, [IDS.expired]);
    const firstLog = loggedMessages();
    const first = await runBatch({ ...sameFolder, logger: firstLog.logger });
    const firstEntry = first.executions[0]!.manifest!.nodes[0]!;
    const again = await runBatch(sameFolder);
    // A copy from a backup, under the name the output gets.
    const name = outputFileName({ title: firstEntry.title, nodeId: firstEntry.node_id ?? undefined, nodeExecuteUuid: firstEntry.node_execute_uuid });
    writeFileSync(path.join(sameFolder.outDir, BATCH_WORKFLOW, IDS.expired, 'nodes', name), 'restored');
    const restored = await runBatch(sameFolder);
    const forcedLog = loggedMessages();
    const forced = await runBatch({ ...sameFolder, force: true, logger: forcedLog.logger });

    expect(again.exitCode).toBe(1);
    const entry = again.executions[0]!.manifest!.nodes[0]!;
    expect([entry.status, entry.reason, entry.error, entry.attempts]).toEqual(['expired', firstEntry.reason, firstEntry.error, 0]);
    expect(restored.exitCode).toBe(0);
    const restoredEntry = restored.executions[0]!.manifest!.nodes[0]!;
    expect([restoredEntry.status, restoredEntry.file, restoredEntry.bytes]).toEqual(['saved', `nodes/${name}`, 8]);
    expect(forced.executions[0]!.manifest!.nodes[0]!.attempts).toBe(1);
    expect(forced.executions[0]!.manifest!.nodes[0]!.status).toBe('saved');
    // The forced run keeps the restored file, so it logs no error about the expiry.
    expect(firstLog.messages()).toContain('output node expired');
    expect(forcedLog.messages()).not.toContain('output node expired');
    expect(forcedLog.messages()).toContain('output could not be fetched again, so the file an earlier run saved is kept');
    // One node request in the first run and one with force, none in between.
    expect(server.countRequests({ route: 'execute_node' })).toBe(2);
    expect(server.countRequests({ route: 'run_history' })).toBe(4);
  });

  it('interrupted force keeps the expiry', async () => {
    // The forced run's request for the expired output stalls until the run is stopped.
    const stall = { route: 'execute_node' as const, requests: [2], action: { type: 'stallBeforeHeaders' as const, ms: 20_000 } };
    const server = await cleanups.server({ ...batchScenario([expiredExecution()]), faults: [stall] });
    const sameFolder = await options(server, [IDS.expired]);
    const first = await runBatch(sameFolder);
    const firstEntry = first.executions[0]!.manifest!.nodes[0]!;

    const stop = new AbortController();
    const forcedRun = runBatch({ ...sameFolder, force: true, signal: stop.signal });
    while (server.countRequests({ route: 'execute_node' }) < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    stop.abort();
    const forced = await forcedRun;
    const again = await runBatch(sameFolder);

    const entry = forced.executions[0]!.manifest!.nodes[0]!;
    expect([entry.status, entry.reason, entry.error]).toEqual(['expired', firstEntry.reason, firstEntry.error]);
    expect(again.executions[0]!.manifest!.nodes[0]!.status).toBe('expired');
    // The first run's request and the forced one, none after the stop.
    expect(server.countRequests({ route: 'execute_node' })).toBe(2);
  });

  it('warning age is configurable', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution()]));

    const result = await runBatch(await options(server, [IDS.saved, IDS.nearExpiry], { expiryWarningMs: 30 * 60_000 }));

    expect(result.exitCode).toBe(0);
    expect(result.executions.map((outcome) => [outcome.executeId, outcome.expiryWarning])).toEqual([
      [IDS.nearExpiry, true],
      [IDS.saved, true],
    ]);
  });
});

describe('ordering and sharing', () => {
  it('fetches outputs oldest first', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), expiredExecution(), nearExpiryExecution()]));

    await runBatch(await options(server, [IDS.saved, IDS.nearExpiry, IDS.expired], { executionConcurrency: 1 }));
    const nodeOrder = server.requests.filter((request) => request.route === 'execute_node').map((request) => request.executeId);
    const runHistoryOrder = server.requests.filter((request) => request.route === 'run_history').map((request) => request.seq);
    const firstNode = server.requests.find((request) => request.route === 'execute_node')!.seq;

    expect(nodeOrder).toEqual([IDS.expired, IDS.nearExpiry, IDS.saved, IDS.saved]);
    // Every run history is read before the first node is fetched.
    expect(Math.max(...runHistoryOrder)).toBeLessThan(firstNode);
  });

  it('one limiter caps the whole batch', async () => {
    const ids = Array.from({ length: 6 }, (_, index) => `74318264059134731${String(index).padStart(2, '0')}`);
    const server = await cleanups.server(batchScenario(ids.map((id) => savedExecution(id))));

    const result = await runBatch(await options(server, ids, { qps: 10 }));

    expect(result.exitCode).toBe(0);
    expect(server.requests).toHaveLength(18);
    // The limiter starts at most 10 requests per 1,020 ms. Arrival at the server can lag the
    // start by some milliseconds on a busy machine, so the check uses a 900 ms window.
    expect(server.maxRequestsInWindow(900)).toBeLessThanOrEqual(10);
    expect(server.maxRequestsInWindow(900)).toBeGreaterThanOrEqual(8);
  });

  it('duplicates in the library run once', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));

    const result = await runBatch(await options(server, [IDS.saved, IDS.saved]));

    expect(result.executions).toHaveLength(1);
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
  });
});

describe('plans between the phases', () => {
  /** Edits of a saved execution.json: one that no longer parses, and a valid one that lists one output fewer. */
  const edits: [string, (text: string) => string][] = [
    ['unreadable', () => 'not the run history'],
    [
      'one node fewer',
      (text) => {
        const body = JSON.parse(text) as { data: { node_execute_status: Record<string, unknown> }[] };
        const status = body.data[0]!.node_execute_status;
        delete status[Object.keys(status)[0]!];
        return JSON.stringify(body);
      },
    ],
  ];

  it.each(edits)('rereads run history if execution.json is %s', async (_name, edit) => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution()]));
    const base = await options(server, [IDS.saved, IDS.nearExpiry]);
    const executionFile = path.join(base.outDir, BATCH_WORKFLOW, IDS.saved, 'execution.json');
    // The plan is dropped after this event, and the outputs are planned again from the file.
    const onProgress = (event: ProgressEvent): void => {
      if (event.type === 'execution-prepared' && event.executeId === IDS.saved) writeFileSync(executionFile, edit(readFileSync(executionFile, 'utf8')));
    };

    const result = await runBatch({ ...base, onProgress });
    const manifest = result.manifests.find((candidate) => candidate.execute_id === IDS.saved)!;
    const saved = JSON.parse(await readFile(executionFile, 'utf8')) as { code: number; data: { node_execute_status: object }[] };

    expect(result.exitCode).toBe(0);
    expect(server.countRequests({ route: 'run_history', executeId: IDS.saved })).toBe(2);
    expect(server.countRequests({ route: 'run_history', executeId: IDS.nearExpiry })).toBe(1);
    expect(server.countRequests({ route: 'execute_node', executeId: IDS.saved })).toBe(2);
    expect(manifest.totals.saved).toBe(manifest.totals.entries);
    expect(manifest.execution_file).toBe('execution.json');
    expect(saved.code).toBe(0);
    expect(Object.keys(saved.data[0]!.node_execute_status)).toHaveLength(2);
  });

  it('one execution keeps its plan', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const base = await options(server, [IDS.saved]);
    const executionFile = path.join(base.outDir, BATCH_WORKFLOW, IDS.saved, 'execution.json');
    // Nothing reads the file back, so an edit after the plan was made changes nothing.
    const onProgress = (event: ProgressEvent): void => {
      if (event.type === 'execution-prepared') writeFileSync(executionFile, 'not the run history');
    };

    const result = await runBatch({ ...base, onProgress });

    expect(result.exitCode).toBe(0);
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
    expect(server.countRequests({ route: 'execute_node' })).toBe(2);
    expect(result.manifests[0]!.totals.saved).toBe(result.manifests[0]!.totals.entries);
  });
});

describe('progress events', () => {
  it('prepared and finished per execution', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution(), expiredExecution()]));
    const events: ProgressEvent[] = [];
    const tracker = new ProgressTracker(3);

    const result = await runBatch(
      await options(server, [IDS.saved, IDS.nearExpiry, IDS.expired], {
        onProgress: (event) => {
          events.push(event);
          tracker.handle(event);
        },
      }),
    );

    const prepared = events.filter((event) => event.type === 'execution-prepared');
    const finished = events.filter((event) => event.type === 'execution-finished');
    expect(prepared.map((event) => [event.executeId, event.entries]).sort()).toEqual(
      [
        [IDS.expired, 1],
        [IDS.nearExpiry, 1],
        [IDS.saved, 3],
      ].sort(),
    );
    expect(finished).toHaveLength(3);
    for (const outcome of result.executions) {
      const event = finished.find((candidate) => candidate.executeId === outcome.executeId)!;
      expect(event.totals).toEqual(outcome.manifest!.totals);
    }

    const bytes = result.manifests.reduce((sum, manifest) => sum + manifest.totals.bytes, 0);
    expect(tracker.snapshot()).toEqual({ executionsDone: 3, executionsTotal: 3, entriesDone: 5, entriesKnown: 5, bytes });
  });

  it('callback errors do not stop it', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const thrown: string[] = [];
    const onProgress = (event: ProgressEvent): void => {
      thrown.push(event.type);
      throw new Error(`callback failed on ${event.type}`);
    };

    const result = await runBatch(await options(server, [IDS.saved], { onProgress }));

    const manifest = result.executions[0]!.manifest!;
    expect(result.exitCode).toBe(0);
    expect(manifest.complete).toBe(true);
    expect(manifest.stopped).toBeUndefined();
    expect(manifest.totals.saved).toBe(manifest.totals.entries);
    expect(thrown.filter((type) => type === 'entry-settled')).toHaveLength(manifest.totals.entries);
    expect(thrown).toContain('execution-finished');
  });

  it('tracker replaces entries with totals', () => {
    const tracker = new ProgressTracker(1);
    const ids = { workflowId: BATCH_WORKFLOW, executeId: IDS.saved };

    tracker.handle({ type: 'execution-prepared', ...ids, entries: 3 });
    tracker.handle({ type: 'entry-settled', ...ids, status: 'saved', bytes: 100 });
    tracker.handle({ type: 'entry-settled', ...ids, status: 'failed', bytes: 0 });
    expect(tracker.snapshot()).toEqual({ executionsDone: 0, executionsTotal: 1, entriesDone: 2, entriesKnown: 3, bytes: 100 });

    const totals = { entries: 3, saved: 2, failed: 1, pending: 0, expired: 0, flagged: 0, bytes: 250 };
    tracker.handle({ type: 'execution-finished', ...ids, totals });
    expect(tracker.snapshot()).toEqual({ executionsDone: 1, executionsTotal: 1, entriesDone: 3, entriesKnown: 3, bytes: 250 });

    // A second pass after --wait starts the execution over.
    tracker.handle({ type: 'execution-prepared', ...ids, entries: 4 });
    expect(tracker.snapshot()).toEqual({ executionsDone: 0, executionsTotal: 1, entriesDone: 0, entriesKnown: 4, bytes: 0 });
  });

  it('bar only on a terminal', () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
    const pipe = new PassThrough();

    expect(wantsProgressBar(terminal, { json: false, quiet: false })).toBe(true);
    expect(wantsProgressBar(terminal, { json: true, quiet: false })).toBe(false);
    expect(wantsProgressBar(terminal, { json: false, quiet: true })).toBe(false);
    expect(wantsProgressBar(pipe, { json: false, quiet: false })).toBe(false);
  });

  it('bar draws entries and bytes', () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 160 });
    let written = '';
    terminal.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
    const display = createProgressDisplay({ stream: terminal, executions: 2 });
    const ids = { workflowId: BATCH_WORKFLOW, executeId: IDS.saved };

    display.onProgress({ type: 'execution-prepared', ...ids, entries: 4 });
    display.onProgress({ type: 'execution-finished', ...ids, totals: { entries: 4, saved: 4, failed: 0, pending: 0, expired: 0, flagged: 0, bytes: 3 * 1024 } });
    display.stop();

    expect(written).toContain('0/4 entries');
    expect(written).toContain('0/2 executions');
    expect(formatBytes(3 * 1024)).toBe('3.0 KiB');
    expect(formatBytes(512)).toBe('512 B');
  });
});

describe('entries in the result', () => {
  it('keepSavedEntries false drops saved ones', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), expiredExecution()]));
    const batchOptions = await options(server, [IDS.saved, IDS.expired]);

    const first = await runBatch(batchOptions);
    const second = await runBatch({ ...batchOptions, keepSavedEntries: false });

    const firstSaved = first.manifests.find((manifest) => manifest.execute_id === IDS.saved)!;
    const secondSaved = second.manifests.find((manifest) => manifest.execute_id === IDS.saved)!;
    const secondExpired = second.manifests.find((manifest) => manifest.execute_id === IDS.expired)!;
    expect(firstSaved.nodes).toHaveLength(3);
    expect(firstSaved.totals.saved).toBe(3);
    expect(secondSaved.nodes).toEqual([]);
    expect(secondSaved.totals).toEqual(firstSaved.totals);
    expect(secondExpired.nodes.map((node) => node.status)).toEqual(['expired']);
    expect(secondExpired.totals.expired).toBe(1);

    const onDisk = JSON.parse(await readFile(path.join(batchOptions.outDir, BATCH_WORKFLOW, IDS.saved, 'manifest.json'), 'utf8'));
    expect(onDisk.nodes).toHaveLength(3);
    expect(first.executions.find((outcome) => outcome.executeId === IDS.saved)!.keptEntries).toBe(0);
    expect(second.executions.find((outcome) => outcome.executeId === IDS.saved)!.keptEntries).toBe(3);
  });
});

describe('summary table', () => {
  it('an interrupted run says how to resume', () => {
    const requests = { sent: 0, overLimitResponses: 0, qps: 20, lowestQps: 20, lowestOverLimitQps: undefined };
    const result = { outDir: '/archive', startedAt: new Date(0).toISOString(), executions: [], manifests: [], exitCode: 130, requests };
    const input = { source: null, format: null, badLines: [], duplicateLines: [] };

    expect(summaryTable(result, input, 0, true)).toContain('Interrupted: run the same command again to resume');
    expect(summaryTable(result, input, 0, false)).not.toContain('Interrupted');
  });
});

describe('log lines with a bar', () => {
  it('go above the bar', async () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 160 });
    let written = '';
    terminal.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
    const display = createProgressDisplay({ stream: terminal, executions: 1 });
    const logger = createLogger({ level: 'warn', pretty: true, prettyDestination: display.logStream });

    display.onProgress({ type: 'execution-prepared', workflowId: BATCH_WORKFLOW, executeId: IDS.saved, entries: 4 });
    logger.info('not at this level');
    logger.warn({ token: 'pat_not_for_logs' }, 'output may be incomplete');
    await new Promise((resolve) => setImmediate(resolve));
    display.stop();

    const warning = written.indexOf('output may be incomplete');
    expect(warning).toBeGreaterThan(0);
    // The bar's line is erased before the warning, so the two do not share a line.
    expect(written.lastIndexOf('\r\u001b[2K', warning)).toBeGreaterThan(written.indexOf('0/4 entries'));
    expect(written).not.toContain('not at this level');
    expect(written).not.toContain('pat_not_for_logs');
  });
});

describe('errors that stop the batch', () => {
  it('rejected token in runBatch', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), nearExpiryExecution()]));

    const result = await runBatch(await options(server, [IDS.saved, IDS.nearExpiry], { token: 'pat_wrong', concurrency: 1 }));

    expect(result.fatalError).toBeInstanceOf(AuthError);
    expect(result.exitCode).toBe(3);
    expect(result.executions.map((outcome) => outcome.manifest === undefined)).toEqual([false, true]);
    expect(server.requests).toHaveLength(1);
  });

  it('archiveExecutions throws AuthError', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));

    await expect(archiveExecutions(await options(server, [IDS.saved], { token: 'pat_wrong' }))).rejects.toBeInstanceOf(AuthError);
  });

  it('invalid ids throw before any request', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));

    await expect(runBatch(await options(server, [IDS.saved, '../etc']))).rejects.toBeInstanceOf(UsageError);
    expect(server.requests).toHaveLength(0);
  });

  it('invalid options throw before any request', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const base = await options(server, [IDS.saved]);
    const file = fileInside(base.outDir);

    const cases: Array<[string, Partial<BatchOptions>, string]> = [
      ['fractional execution concurrency', { executionConcurrency: 1.5 }, 'Invalid execution concurrency 1.5: expected a whole number above 0.'],
      ['output folder that is a file', { outDir: file }, `Invalid outDir ${file}: it exists and is not a folder.`],
      ['output folder below a file', { outDir: path.join(file, 'sub') }, `Invalid outDir ${path.join(file, 'sub')}: ${file} is a file, not a folder.`],
      ['empty output folder', { outDir: '' }, 'Invalid outDir "": name a folder.'],
      ['first retry delay above the cap', { retryMinDelayMs: 5_000, retryMaxDelayMs: 10 }, 'retryMinDelayMs 5000 is above retryMaxDelayMs 10'],
      ['missing token', { token: '' }, 'Missing token: pass a Coze personal access token as the token option.'],
      ['expiry warning past 24 hours', { expiryWarningMs: 25 * 3_600_000 }, 'Invalid expiry warning 90000000 ms: at most 24 hours'],
    ];
    for (const [name, extra, message] of cases) {
      const error = await runBatch({ ...base, ...extra }).catch((caught: unknown) => caught);
      expect(error, name).toBeInstanceOf(UsageError);
      expect((error as Error).message, name).toContain(message);
    }

    const missingList = await runBatch({ ...base, executions: undefined as unknown as BatchOptions['executions'] }).catch((caught: unknown) => caught);
    expect(missingList).toBeInstanceOf(UsageError);
    expect(server.requests).toHaveLength(0);
  });

  it('single call rejects a file as folder', async () => {
    const server = await cleanups.server(batchScenario([savedExecution()]));
    const base = await options(server, [IDS.saved]);
    const file = fileInside(base.outDir);

    const single = archiveExecutionOutputs({ token: BATCH_TOKEN, baseUrl: server.url, outDir: file, workflowId: BATCH_WORKFLOW, executeId: IDS.saved });

    await expect(single).rejects.toBeInstanceOf(UsageError);
    expect(server.requests).toHaveLength(0);
  });

  it('archiveExecutions returns manifests', async () => {
    const server = await cleanups.server(batchScenario([savedExecution(), expiredExecution()]));

    const result = await archiveExecutions(await options(server, [IDS.saved, IDS.expired]));

    expect(result.exitCode).toBe(1);
    expect(result.manifests.map((manifest) => manifest.execute_id)).toEqual([IDS.expired, IDS.saved]);
    expect(result.manifests[1]!.complete).toBe(true);
  });
});
