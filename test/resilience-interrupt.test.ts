import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ExecutionManifest } from '../src/index.js';
import type { FakeCozeServer, Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { CLI_PATH, readJson, runCli } from './helpers/run-cli.js';
import { EXECUTE_ID, executionScenario, nodeText, nodeUuid, TOKEN, WORKFLOW_ID } from './helpers/scenarios.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const start = (scenario: Scenario): Promise<FakeCozeServer> => cleanups.server(scenario);

const tempDir = (): Promise<string> => cleanups.folder();

function fetchArgs(server: FakeCozeServer, outDir: string, extra: string[] = []): string[] {
  return [
    'fetch',
    '--workflow-id', WORKFLOW_ID,
    '--execute-id', EXECUTE_ID,
    '--base-url', server.url,
    '--out', outDir,
    '--retry-min-delay', '10ms',
    '--qps', '500',
    ...extra,
  ];
}

const env = { COZE_API_TOKEN: TOKEN };

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Maps the sha256 of every node text the scenario serves to its index. */
function expectedHashes(count: number, chars: number): Map<string, number> {
  const hashes = new Map<string, number>();
  for (let index = 1; index <= count; index += 1) hashes.set(sha256(Buffer.from(nodeText(index, chars), 'utf8')), index);
  return hashes;
}

describe('interruption', () => {
  it('SIGINT mid-body exits 130, then resumes', async () => {
    const slowNode = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(3), times: 1, action: { type: 'slowBody' as const, chunkBytes: 2_048, delayMs: 100 } };
    const server = await start(executionScenario(5, { faults: [slowNode] }, () => ({ text: nodeText(0, 20_000) })));
    const outDir = await tempDir();
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

    const first = await runCli(fetchArgs(server, outDir, ['--concurrency', '5']), {
      env,
      onSpawn: (child) => {
        void waitFor(() => server.countRequests({ route: 'execute_node' }) === 5 && server.requests.length === 6)
          .then(() => new Promise((resolve) => setTimeout(resolve, 300)))
          .then(() => child.kill('SIGINT'));
      },
    });
    const interrupted = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
    const slowEntry = interrupted.nodes.find((node) => node.node_execute_uuid === nodeUuid(3))!;

    expect(first.code).toBe(130);
    expect(interrupted.stopped).toBe('interrupted');
    expect(slowEntry.status).toBe('pending');
    expect(slowEntry.reason).toBe('interrupted');
    expect(interrupted.totals.saved).toBe(4);
    expect((await readdir(path.join(folder, 'nodes'))).filter((name) => name.includes('.tmp-'))).toEqual([]);

    const requestsBefore = server.requests.length;
    const second = await runCli(fetchArgs(server, outDir), { env });
    const resumed = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));

    expect(second.code).toBe(0);
    expect(resumed.totals.saved).toBe(5);
    expect(resumed.complete).toBe(true);
    // One run-history call and only the one node that was not saved.
    expect(server.requests.length - requestsBefore).toBe(2);
    expect(server.requests.at(-1)?.nodeExecuteUuid).toBe(nodeUuid(3));
  });

  it('SIGINT still saves inline outputs', async () => {
    const slowNode = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(1), times: 1, action: { type: 'slowBody' as const, chunkBytes: 2_048, delayMs: 100 } };
    const scenario = executionScenario(3, { faults: [slowNode] }, () => ({ text: nodeText(0, 20_000) }));
    const inline = { Output: '{"answer":"完成"}', 摘要: '归档已完成。' };
    scenario.executions![0]!.record = { output: inline };
    const server = await start(scenario);
    const outDir = await tempDir();
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

    const result = await runCli(fetchArgs(server, outDir, ['--concurrency', '1']), {
      env,
      onSpawn: (child) => {
        void waitFor(() => server.countRequests({ route: 'execute_node' }) === 1)
          .then(() => new Promise((resolve) => setTimeout(resolve, 300)))
          .then(() => child.kill('SIGINT'));
      },
    });
    const manifest = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
    const inlineEntries = manifest.nodes.filter((node) => node.source === 'inline');
    const nodeEntries = manifest.nodes.filter((node) => node.source === 'execute_nodes');

    expect(result.code).toBe(130);
    expect(manifest.stopped).toBe('interrupted');
    // Only the slow node was requested, and the others were not started.
    expect(server.countRequests({ route: 'execute_node' })).toBe(1);
    expect(nodeEntries.map((node) => [node.status, node.reason])).toEqual(Array.from({ length: 3 }, () => ['pending', 'interrupted']));
    expect(inlineEntries.map((node) => node.title).sort()).toEqual(Object.keys(inline).sort());
    for (const entry of inlineEntries) {
      expect(entry.status).toBe('saved');
      const text = await readFile(path.join(folder, entry.file!), 'utf8');
      expect(text).toBe(inline[entry.title as keyof typeof inline]);
    }
  });

  it('second signal exits at once', async () => {
    // A slow 200 KB body: past 64 KiB it streams to a temporary file, which must not survive.
    const slowNode = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(2), times: 1, action: { type: 'slowBody' as const, chunkBytes: 16_384, delayMs: 200 } };
    const server = await start(executionScenario(3, { faults: [slowNode] }, () => ({ text: nodeText(0, 70_000) })));
    const outDir = await tempDir();
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

    const first = await runCli(fetchArgs(server, outDir), {
      env,
      onSpawn: (child) => {
        void waitFor(() => server.countRequests({ route: 'execute_node' }) === 3)
          .then(() => new Promise((resolve) => setTimeout(resolve, 1_200)))
          .then(() => {
            // Two different signals, so the system cannot merge them into one delivery. Each
            // may reach a different thread of the child, so either can be handled first.
            child.kill('SIGINT');
            child.kill('SIGTERM');
          });
      },
    });

    const stopping = /(SIGINT|SIGTERM): stopping/.exec(first.stderr)?.[1];
    const exiting = /(SIGINT|SIGTERM) again: exiting now\./.exec(first.stderr)?.[1];
    expect(stopping).toBeDefined();
    expect(exiting).toBe(stopping === 'SIGINT' ? 'SIGTERM' : 'SIGINT');
    expect(first.code).toBe(exiting === 'SIGTERM' ? 143 : 130);
    // Nothing, not even the summary, follows the line announcing the exit.
    expect(first.stderr.trimEnd().endsWith('again: exiting now.')).toBe(true);
    expect((await readdir(path.join(folder, 'nodes'))).filter((name) => name.includes('.tmp-'))).toEqual([]);

    const second = await runCli(fetchArgs(server, outDir), { env });
    const resumed = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));

    expect(second.code).toBe(0);
    expect(resumed.complete).toBe(true);
    expect(resumed.totals.saved).toBe(3);
  });

  it('SIGTERM exits 143', async () => {
    const stall = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(1), times: 1, action: { type: 'stallBeforeHeaders' as const, ms: 20_000 } };
    const server = await start(executionScenario(2, { faults: [stall] }));
    const outDir = await tempDir();

    const result = await runCli(fetchArgs(server, outDir, ['--timeout', '30s']), {
      env,
      onSpawn: (child) => {
        void waitFor(() => server.countRequests({ route: 'execute_node' }) === 2).then(() => child.kill('SIGTERM'));
      },
    });
    const manifest = await readJson<ExecutionManifest>(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'manifest.json'));

    expect(result.code).toBe(143);
    expect(manifest.totals.saved).toBe(1);
    expect(manifest.totals.pending).toBe(1);
  });

  it('SIGINT mid-retry keeps last failure', async () => {
    const unavailable = { route: 'run_history' as const, times: 5, action: { type: 'status' as const, status: 503, code: 5000 } };
    const server = await start(executionScenario(2, { faults: [unavailable] }));
    const outDir = await tempDir();

    const result = await runCli(fetchArgs(server, outDir, ['--retry-min-delay', '5s']), {
      env,
      onSpawn: (child) => {
        void waitFor(() => server.countRequests({ route: 'run_history' }) === 1).then(() => child.kill('SIGINT'));
      },
    });
    const manifest = await readJson<ExecutionManifest>(path.join(outDir, WORKFLOW_ID, EXECUTE_ID, 'manifest.json'));

    expect(result.code).toBe(130);
    expect(manifest.stopped).toBe('interrupted');
    expect(manifest.error?.message).toMatch(/^Run history could not be read before the run stopped: .*503/);
    expect(server.countRequests({ route: 'run_history' })).toBe(1);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });

  it('SIGKILL leaves no truncated file, then resumes', async () => {
    const count = 30;
    const chars = 30_000;
    const slow = { route: 'execute_node' as const, action: { type: 'slowBody' as const, chunkBytes: 16_384, delayMs: 20 } };
    const server = await start(executionScenario(count, { faults: [slow] }, (index) => ({ text: nodeText(index, chars) })));
    const outDir = await tempDir();
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

    const child = spawn(process.execPath, [CLI_PATH, ...fetchArgs(server, outDir, ['--concurrency', '4'])], {
      env: { PATH: process.env.PATH, ...env },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await waitFor(() => server.countRequests({ route: 'execute_node' }) >= 12);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const hashes = expectedHashes(count, chars);
    const finalNames = (await readdir(path.join(folder, 'nodes'))).filter((name) => !name.includes('.tmp-'));
    expect(finalNames.length).toBeGreaterThan(0);
    expect(finalNames.length).toBeLessThan(count);
    for (const name of finalNames) {
      const bytes = await readFile(path.join(folder, 'nodes', name));
      expect(hashes.has(sha256(bytes))).toBe(true);
    }

    const result = await runCli(fetchArgs(server, outDir), { env });
    const manifest = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
    const names = await readdir(path.join(folder, 'nodes'));

    expect(result.code).toBe(0);
    expect(manifest.totals.saved).toBe(count);
    expect(names.filter((name) => name.includes('.tmp-'))).toEqual([]);
    expect(names).toHaveLength(count);
    for (const entry of manifest.nodes) {
      const bytes = await readFile(path.join(folder, entry.file!));
      expect(sha256(bytes)).toBe(entry.sha256);
    }
  });
});

describe('interrupting --force', () => {
  /** Archives five nodes from a fast server, then returns a second server whose third node streams slowly. */
  async function savedArchive(): Promise<{ slowServer: FakeCozeServer; outDir: string; folder: string; first: ExecutionManifest }> {
    const texts = () => ({ text: nodeText(0, 20_000) });
    const fast = await start(executionScenario(5, {}, texts));
    const slowNode = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(3), action: { type: 'slowBody' as const, chunkBytes: 2_048, delayMs: 200 } };
    const slowServer = await start(executionScenario(5, { faults: [slowNode] }, texts));
    const outDir = await tempDir();
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

    expect((await runCli(fetchArgs(fast, outDir), { env })).code).toBe(0);
    return { slowServer, outDir, folder, first: await readJson<ExecutionManifest>(path.join(folder, 'manifest.json')) };
  }

  const savedFields = (manifest: ExecutionManifest) => manifest.nodes.map((node) => [node.node_execute_uuid, node.status, node.file, node.sha256]);

  it('SIGTERM keeps every earlier file listed', async () => {
    const { slowServer, outDir, folder, first } = await savedArchive();

    const result = await runCli(fetchArgs(slowServer, outDir, ['--force', '--concurrency', '1']), {
      env,
      onSpawn: (child) => {
        void waitFor(() => slowServer.countRequests({ route: 'execute_node', nodeExecuteUuid: nodeUuid(3) }) === 1)
          .then(() => new Promise((resolve) => setTimeout(resolve, 300)))
          .then(() => child.kill('SIGTERM'));
      },
    });
    const manifest = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));

    expect(result.code).toBe(143);
    // Every entry is still saved, so the stop left the archive complete.
    expect(manifest.stopped).toBeUndefined();
    expect(manifest.complete).toBe(true);
    // Nodes 1 and 2 were fetched again, node 3 was cut off, and 4 and 5 were not reached.
    expect(slowServer.countRequests({ route: 'execute_node' })).toBe(3);
    expect(savedFields(manifest)).toEqual(savedFields(first));
    expect((await runCli(['verify', outDir], { env })).code).toBe(0);
  });

  it('SIGKILL leaves every earlier file listed', async () => {
    const { slowServer, outDir, folder, first } = await savedArchive();
    const manifestPath = path.join(folder, 'manifest.json');

    const child = spawn(process.execPath, [CLI_PATH, ...fetchArgs(slowServer, outDir, ['--force', '--concurrency', '1'])], {
      env: { PATH: process.env.PATH, ...env },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // Killed once this run has written a manifest of its own, while node 3 still streams.
    let written: ExecutionManifest | undefined;
    await waitFor(() => {
      try {
        written = JSON.parse(readFileSync(manifestPath, 'utf8')) as ExecutionManifest;
      } catch {
        return false;
      }
      return written.started_at !== first.started_at;
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const manifest = await readJson<ExecutionManifest>(manifestPath);

    expect(manifest.started_at).not.toBe(first.started_at);
    expect(manifest.finished_at).toBeNull();
    expect(savedFields(manifest)).toEqual(savedFields(first));
    const verified = await runCli(['verify', outDir], { env });
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('the run that wrote this manifest did not finish: it was killed, or is still running');
  });
});

describe('resume', () => {
  it('refetches only altered, missing and failed entries', async () => {
    const failOnce = { route: 'execute_node' as const, nodeExecuteUuid: nodeUuid(4), times: 1, action: { type: 'status' as const, status: 200, code: 4200 } };
    const server = await start(executionScenario(6, { faults: [failOnce] }));
    const outDir = await tempDir();
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

    const first = await runCli(fetchArgs(server, outDir), { env });
    const before = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
    const byIndex = (manifest: ExecutionManifest, index: number) => manifest.nodes.find((node) => node.node_execute_uuid === nodeUuid(index))!;
    expect(first.code).toBe(1);
    expect(byIndex(before, 4).status).toBe('failed');

    await writeFile(path.join(folder, byIndex(before, 1).file!), 'altered by hand');
    await rm(path.join(folder, byIndex(before, 2).file!));
    const requestsBefore = server.requests.length;

    const second = await runCli(fetchArgs(server, outDir), { env });
    const after = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
    const refetched = server.requests.slice(requestsBefore).filter((request) => request.route === 'execute_node').map((request) => request.nodeExecuteUuid).sort();

    expect(second.code).toBe(0);
    expect(refetched).toEqual([nodeUuid(1), nodeUuid(2), nodeUuid(4)].sort());
    expect(await readFile(path.join(folder, byIndex(after, 1).file!), 'utf8')).toBe(nodeText(1));
    expect(byIndex(after, 2).file).toBe(byIndex(before, 2).file);
    expect(after.totals.saved).toBe(6);
  });

  it('--force fetches everything again', async () => {
    const server = await start(executionScenario(4));
    const outDir = await tempDir();

    await runCli(fetchArgs(server, outDir), { env });
    const requestsBefore = server.requests.length;
    const result = await runCli(fetchArgs(server, outDir, ['--force']), { env });

    expect(result.code).toBe(0);
    expect(server.requests.length - requestsBefore).toBe(5);
  });

  it('skips every intact entry on a plain re-run', async () => {
    const server = await start(executionScenario(4));
    const outDir = await tempDir();

    await runCli(fetchArgs(server, outDir), { env });
    const requestsBefore = server.requests.length;
    const result = await runCli(fetchArgs(server, outDir), { env });

    expect(result.code).toBe(0);
    expect(server.requests.length - requestsBefore).toBe(1);
    expect(server.requests.at(-1)?.route).toBe('run_history');
  });
});
