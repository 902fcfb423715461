import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { startFakeCozeServer, type FakeCozeServer, type Scenario } from '../src/fake-server/index.js';
import { archiveExecutionOutputs, UsageError, type ExecutionManifest } from '../src/index.js';
import { makeTempDir, runCli } from './helpers/run-cli.js';

// Ids become folder names and URL paths, and an earlier manifest names files to reuse: each
// must stay a digit string, a path segment of its own endpoint, or a file inside the archive.

const TOKEN = 'pat_ids_8e4f';
/** Ids above 2^53 whose last digits change when parsed as a number. */
const WORKFLOW_ID = '7350000000000000511';
const EXECUTE_ID = '7431826405913471235';
const SUB_EXECUTE_ID = '7431826405913479999';
const NODE_ID = '7512345678901234567';
const UUID = '5a5a5a5a-5555-4666-8777-888899990000';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(scenario: Scenario): Promise<FakeCozeServer> {
  const server = await startFakeCozeServer({ scenario });
  cleanups.push(() => server.close());
  return server;
}

async function tempDir(): Promise<string> {
  const temp = await makeTempDir('coze-security-ids-');
  cleanups.push(temp.remove);
  return temp.dir;
}

function oneNodeScenario(): Scenario {
  return {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW_ID,
        executeId: EXECUTE_ID,
        nodes: [{ key: '结果', nodeId: NODE_ID, nodeExecuteUuid: UUID, subExecuteId: SUB_EXECUTE_ID, text: '子流程的输出' }],
      },
    ],
  };
}

async function archive(baseUrl: string, outDir: string, ids: { workflowId: string; executeId: string } = { workflowId: WORKFLOW_ID, executeId: EXECUTE_ID }) {
  return archiveExecutionOutputs({ token: TOKEN, baseUrl, outDir, retries: 0, qps: 1_000, ...ids });
}

describe('ids given to the library', () => {
  const invalid = ['../1', '1/2', '', '12a', ' 12', '-1', '1.5', '1e3', '１２', '1'.repeat(33), `${WORKFLOW_ID}\n`];

  it.each(invalid.map((id) => [JSON.stringify(id), id]))('workflow id %s rejected', async (_label, id) => {
    const server = await start(oneNodeScenario());
    const outDir = await tempDir();

    await expect(archive(server.url, outDir, { workflowId: id, executeId: EXECUTE_ID })).rejects.toThrow(/must be digit strings/);
    expect(await readdir(outDir), 'folders created').toEqual([]);
    expect(server.requests.length, 'requests sent').toBe(0);
  });

  it.each(invalid.map((id) => [JSON.stringify(id), id]))('execute id %s rejected', async (_label, id) => {
    const server = await start(oneNodeScenario());
    const outDir = await tempDir();

    await expect(archive(server.url, outDir, { workflowId: WORKFLOW_ID, executeId: id })).rejects.toBeInstanceOf(UsageError);
    expect(await readdir(outDir), 'folders created').toEqual([]);
    expect(server.requests.length, 'requests sent').toBe(0);
  });

  it('number id rejected', async () => {
    const server = await start(oneNodeScenario());
    const outDir = await tempDir();
    // A JavaScript caller can pass a number; as one, this id has already lost its last digits.
    const executeId = Number(EXECUTE_ID) as unknown as string;

    await expect(archive(server.url, outDir, { workflowId: WORKFLOW_ID, executeId })).rejects.toBeInstanceOf(UsageError);
    expect(await readdir(outDir)).toEqual([]);
  });
});

describe('19-digit ids stay strings', () => {
  it('manifest, summary and folder keep every digit', async () => {
    expect(String(Number(EXECUTE_ID)), 'precondition: the id is not exact as a number').not.toBe(EXECUTE_ID);
    const server = await start(oneNodeScenario());
    const outDir = await tempDir();

    const result = await runCli(
      ['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--out', outDir, '--base-url', server.url, '--json'],
      { env: { COZE_API_TOKEN: TOKEN } },
    );
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);
    const manifestText = await readFile(path.join(folder, 'manifest.json'), 'utf8');
    const executionText = await readFile(path.join(folder, 'execution.json'), 'utf8');

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`"workflow_id":\\s*"${WORKFLOW_ID}"`));
    expect(result.stdout).toMatch(new RegExp(`"execute_id":\\s*"${EXECUTE_ID}"`));
    expect(manifestText).toMatch(new RegExp(`"workflow_id":\\s*"${WORKFLOW_ID}"`));
    expect(manifestText).toMatch(new RegExp(`"execute_id":\\s*"${EXECUTE_ID}"`));
    expect(manifestText).toMatch(new RegExp(`"node_id":\\s*"${NODE_ID}"`));
    expect(manifestText).toMatch(new RegExp(`"sub_execute_id":\\s*"${SUB_EXECUTE_ID}"`));
    expect(executionText).toContain(`"execute_id":"${EXECUTE_ID}"`);
    expect(`${manifestText}${result.stdout}`, 'rounded id').not.toContain(String(Number(EXECUTE_ID)));
    expect(`${manifestText}${result.stdout}`, 'id as a number').not.toMatch(new RegExp(`:\\s*${EXECUTE_ID}\\b`));
  });
});

describe('ids and paths from the remote service', () => {
  it.each(['.', '..'])('node_execute_uuid %j stays on its endpoint', async (uuid) => {
    const server = await start({
      token: TOKEN,
      executions: [{ workflowId: WORKFLOW_ID, executeId: EXECUTE_ID, nodes: [{ key: 'dots', nodeId: '100001', nodeExecuteUuid: uuid, text: 'x' }] }],
    });

    await archive(server.url, await tempDir());
    const routes = server.requests.map((request) => `${request.route} ${request.path}`);

    expect(routes.filter((route) => route.startsWith('unknown'))).toEqual([]);
  });
});

describe('tampered earlier manifest', () => {
  async function withEarlierManifest(file: string) {
    const server = await start(oneNodeScenario());
    const root = await tempDir();
    const outDir = path.join(root, 'out');
    const folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);
    await mkdir(folder, { recursive: true });
    const entry = { node_execute_uuid: UUID, title: '结果', source: 'execute_nodes', status: 'saved', file, bytes: 1, sha256: '0'.repeat(64), attempts: 1 };
    await writeFile(path.join(folder, 'manifest.json'), JSON.stringify({ workflow_id: WORKFLOW_ID, execute_id: EXECUTE_ID, nodes: [entry] }));
    return { server, root, outDir, folder };
  }

  it('outside path writes nothing outside', async () => {
    const { server, root, outDir } = await withEarlierManifest('../../../escaped.txt');

    await archive(server.url, outDir).catch(() => undefined);
    const files = await readdir(root, { recursive: true });

    expect(files.filter((file) => !file.startsWith('out'))).toEqual([]);
  });

  it('outside path ignored, run completes', async () => {
    const { server, outDir } = await withEarlierManifest('../../../escaped.txt');

    const manifest: ExecutionManifest = await archive(server.url, outDir);

    expect(manifest.nodes[0]?.status).toBe('saved');
    expect(manifest.nodes[0]?.file).toMatch(/^nodes\//);
  });

  it('own file name not overwritten', async () => {
    const { server, outDir, folder } = await withEarlierManifest('execution.json');

    await archive(server.url, outDir).catch(() => undefined);
    const execution = await readFile(path.join(folder, 'execution.json'), 'utf8');

    expect(execution.startsWith('{"code":0')).toBe(true);
  });
});
