import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import {
  archiveExecutionOutputs,
  AuthError,
  exitCodeFor,
  UsageError,
  verifyArchive,
  type ArchiveExecutionOptions,
  type ExecutionManifest,
} from '../src/index.js';
import { textSummary } from '../src/cli/summary.js';
import { listNodeOutputs, startFakeCozeServer, type FakeCozeServer, type Scenario } from '../src/fake-server/index.js';
import { makeTempDir, readJson, runCli } from './helpers/run-cli.js';

// archiveExecutionOutputs in this process, against the fake Coze server on 127.0.0.1, and
// against undici's MockAgent for bodies the fake server cannot send, such as ids beyond 2^53
// written as JSON numbers with all their digits.

const DEMO = 'fixtures/demo.json';
const TOKEN = 'pat_demo_token';
const DEMO_WORKFLOW = '7350000000000000001';
const DEMO_DONE = '7431826405913470001';
const WORKFLOW = '7350000000000000301';
const EXECUTE_ID = '7431826405913473001';
/** The origin the MockAgent intercepts. Net connect is disabled, so no request leaves the process. */
const MOCK_ORIGIN = 'http://127.0.0.1:9';
const LOGID = '20250101120000ABCDEF0123456789ABCDEF';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function startServer(scenario: Scenario | string): Promise<FakeCozeServer> {
  const server = await startFakeCozeServer({ scenario });
  cleanups.push(() => server.close());
  return server;
}

async function newOutDir(): Promise<string> {
  const temp = await makeTempDir('coze-fetch-library-');
  cleanups.push(temp.remove);
  return temp.dir;
}

function options(baseUrl: string, outDir: string, extra: Partial<ArchiveExecutionOptions> = {}): ArchiveExecutionOptions {
  return { token: TOKEN, baseUrl, outDir, workflowId: WORKFLOW, executeId: EXECUTE_ID, qps: 200, retryMinDelayMs: 10, retries: 0, ...extra };
}

/** Creates a MockAgent that replies to run history with `body` as raw text, byte for byte. */
function mockRunHistory(body: string): MockAgent {
  const agent = new MockAgent();
  agent.disableNetConnect();
  agent
    .get(MOCK_ORIGIN)
    .intercept({ path: `/v1/workflows/${WORKFLOW}/run_histories/${EXECUTE_ID}`, method: 'GET' })
    .reply(200, body, { headers: { 'content-type': 'application/json', 'x-tt-logid': LOGID } });
  cleanups.push(() => agent.close());
  return agent;
}

/** Builds a run-history envelope around record text spliced in as written, so number literals keep every digit. */
function envelope(recordText: string): string {
  return `{"code":0,"msg":"","data":[${recordText}],"detail":{"logid":"${LOGID}"}}`;
}

describe('archiveExecutionOutputs with fake server', () => {
  it('archives the demo execution', async () => {
    const server = await startServer(DEMO);
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(server.url, outDir, { workflowId: DEMO_WORKFLOW, executeId: DEMO_DONE }));
    const folder = path.join(outDir, DEMO_WORKFLOW, DEMO_DONE);

    expect(manifest.execute_status).toBe('Success');
    expect(manifest.complete).toBe(true);
    expect(exitCodeFor([manifest])).toBe(0);
    for (const node of listNodeOutputs(DEMO, DEMO_DONE)) {
      const entry = manifest.nodes.find((candidate) => candidate.node_execute_uuid === node.nodeExecuteUuid)!;
      const saved = await readFile(path.join(folder, entry.file!));
      expect(saved.equals(Buffer.from(node.text(), 'utf8')), node.key).toBe(true);
    }
  });

  it('outputs saved when execution.json fails', async () => {
    const server = await startServer(DEMO);
    const outDir = await newOutDir();
    const folder = path.join(outDir, DEMO_WORKFLOW, DEMO_DONE);
    // A folder in the way makes the rename fail with EISDIR, an error that does not stop the run.
    await mkdir(path.join(folder, 'execution.json'), { recursive: true });
    const manifest = await archiveExecutionOutputs(options(server.url, outDir, { workflowId: DEMO_WORKFLOW, executeId: DEMO_DONE }));
    const nodes = listNodeOutputs(DEMO, DEMO_DONE);

    expect(manifest.error?.message).toContain('Failed to save execution.json');
    expect(manifest.error?.message).toContain('EISDIR');
    expect(manifest.execution_file).toBeNull();
    expect(manifest.complete).toBe(false);
    expect(exitCodeFor([manifest])).toBe(1);
    expect(manifest.totals.saved).toBe(manifest.totals.entries);
    expect(server.countRequests({ route: 'execute_node' })).toBe(nodes.length);
    for (const node of nodes) {
      const entry = manifest.nodes.find((candidate) => candidate.node_execute_uuid === node.nodeExecuteUuid)!;
      expect((await readFile(path.join(folder, entry.file!))).equals(Buffer.from(node.text(), 'utf8')), node.key).toBe(true);
    }
    expect(await readdir(folder)).not.toContainEqual(expect.stringMatching(/\.tmp-/));
  });

  it('returns the manifest it wrote', async () => {
    const server = await startServer(DEMO);
    const outDir = await newOutDir();
    // A clock that moves 1 ms per reading, so two snapshots taken apart never share a time.
    let readings = 0;
    const now = (): number => Date.now() + (readings += 1);
    const manifest = await archiveExecutionOutputs(
      options(server.url, outDir, { workflowId: DEMO_WORKFLOW, executeId: DEMO_DONE, now }),
    );
    const written = await readJson<ExecutionManifest>(path.join(outDir, DEMO_WORKFLOW, DEMO_DONE, 'manifest.json'));

    expect(written).toEqual(JSON.parse(JSON.stringify(manifest)));
  });

  it('rejected token throws AuthError', async () => {
    const server = await startServer(DEMO);
    const wrongToken = 'pat_wrong_library_token_77aa';
    const attempt = archiveExecutionOutputs(
      options(server.url, await newOutDir(), { token: wrongToken, workflowId: DEMO_WORKFLOW, executeId: DEMO_DONE }),
    );

    const error = (await attempt.catch((caught: unknown) => caught)) as AuthError;
    expect(error).toBeInstanceOf(AuthError);
    expect(error.code).toBe(4100);
    expect(error.logid).toMatch(/^\d{14}[0-9A-F]{20}$/);
    expect(error.message).not.toContain(wrongToken);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });

  it('non-digit id throws UsageError', async () => {
    const server = await startServer(DEMO);
    const attempt = archiveExecutionOutputs(options(server.url, await newOutDir(), { executeId: '7431-8264' }));

    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    expect(server.requests).toHaveLength(0);
  });

  it('numeric execute_id is rejected', async () => {
    // The scenario record carries the id as a JSON number, which past 2^53 has already lost digits.
    const scenario: Scenario = {
      token: TOKEN,
      executions: [
        {
          workflowId: WORKFLOW,
          executeId: EXECUTE_ID,
          record: { execute_id: Number(EXECUTE_ID) },
          nodes: [{ key: 'a', nodeId: '310', nodeExecuteUuid: 'c3000000-0000-4000-8000-000000000001', text: 'x' }],
        },
      ],
    };
    const server = await startServer(scenario);
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(server.url, outDir));

    expect(manifest.error?.kind).toBe('invalid_response');
    expect(manifest.error?.message).toContain('execute_id');
    expect(manifest.nodes).toEqual([]);
    expect(exitCodeFor([manifest])).toBe(1);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });
});

describe('a node run listed in an unexpected shape', () => {
  const uuid = 'c3000000-0000-4000-8000-000000000001';
  const scenario: Scenario = {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW,
        executeId: EXECUTE_ID,
        record: {
          node_execute_status: {
            正文: { node_id: '310', is_finish: true, node_execute_uuid: uuid },
            附录: { node_id: '311', is_finish: true },
          },
        },
        nodes: [{ key: '正文', nodeId: '310', nodeExecuteUuid: uuid, text: '正文的全部内容' }],
      },
    ],
  };

  it('fails alone, the rest saved', async () => {
    const server = await startServer(scenario);
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(server.url, outDir));
    const folder = path.join(outDir, WORKFLOW, EXECUTE_ID);
    const saved = manifest.nodes.find((entry) => entry.title === '正文')!;
    const failed = manifest.nodes.find((entry) => entry.title === '附录')!;

    expect(manifest.error).toBeUndefined();
    expect(manifest.execution_file).toBe('execution.json');
    expect(saved.status).toBe('saved');
    expect(await readFile(path.join(folder, saved.file!), 'utf8')).toBe('正文的全部内容');
    expect(failed.status).toBe('failed');
    expect(failed.source).toBe('execute_nodes');
    expect('node_execute_uuid' in failed).toBe(false);
    expect(failed.file).toBeNull();
    expect(failed.error?.kind).toBe('invalid_response');
    expect(failed.error?.message).toContain('node_execute_status.附录.node_execute_uuid: missing, expected string');
    expect(failed.error?.logid).toMatch(/^\d{14}[0-9A-F]{20}$/);
    expect(failed.error?.logid).toBe(manifest.run_history_logid);
    expect(textSummary([manifest], outDir)).toContain(`  failed: 附录 ${failed.error?.message} logid ${failed.error?.logid}\n`);
    expect(manifest.totals.failed).toBe(1);
    expect(exitCodeFor([manifest])).toBe(1);
    expect(server.countRequests({ route: 'execute_node' })).toBe(1);
  });

  it('verify counts it as lost', async () => {
    const server = await startServer(scenario);
    const outDir = await newOutDir();
    await archiveExecutionOutputs(options(server.url, outDir));

    const report = await verifyArchive(outDir);
    const text = await runCli(['verify', outDir]);

    expect(report.intact).toBe(true);
    expect(report.entries_not_saved).toBe(1);
    expect(report.entries_malformed).toBe(1);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      'Not complete: 1 entry not saved; fetch reports why. 1 of them is listed in the run history in an unexpected shape, so no re-run can fetch it.',
    );
  });

  it('fails again on a re-run', async () => {
    const server = await startServer(scenario);
    const outDir = await newOutDir();
    await archiveExecutionOutputs(options(server.url, outDir));
    const manifest = await archiveExecutionOutputs(options(server.url, outDir));

    expect(manifest.nodes.map((entry) => [entry.title, entry.status])).toEqual([
      ['正文', 'saved'],
      ['附录', 'failed'],
    ]);
    expect(server.countRequests({ route: 'execute_node' })).toBe(1);
  });

  it('stays listed after a failed re-read', async () => {
    const execution = scenario.executions![0]!;
    const statuses = { ...(execution.record!['node_execute_status'] as object), 附件: { node_id: '312', is_finish: false } };
    const server = await startServer({
      ...scenario,
      executions: [{ ...execution, record: { node_execute_status: statuses } }],
      faults: [{ route: 'run_history', requests: [2], action: { type: 'status', status: 500, code: 5000 } }],
    });
    const outDir = await newOutDir();
    await archiveExecutionOutputs(options(server.url, outDir));
    const manifest = await archiveExecutionOutputs(options(server.url, outDir));

    expect(manifest.error?.http_status).toBe(500);
    expect(manifest.error?.message).toMatch(/^Run history could not be read: Coze returned code 5000/);
    expect(manifest.nodes.map((entry) => [entry.title, entry.status]).sort()).toEqual([
      ['正文', 'saved'],
      ['附件', 'failed'],
      ['附录', 'failed'],
    ]);
  });

  it('failed first read makes no output folders', async () => {
    const server = await startServer({
      ...scenario,
      faults: [{ route: 'run_history', requests: [1], action: { type: 'status', status: 500, code: 5000 } }],
    });
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(server.url, outDir));

    expect(manifest.error?.message).toMatch(/^Run history could not be read: Coze returned code 5000/);
    expect((await readdir(path.join(outDir, WORKFLOW, EXECUTE_ID))).sort()).toEqual(['manifest.json']);
    expect(server.countRequests({ route: 'execute_node' })).toBe(0);
  });
});

describe('archiveExecutionOutputs with MockAgent', () => {
  it('unsafe numeric id names field', async () => {
    const agent = mockRunHistory(envelope(`{"execute_id":${EXECUTE_ID},"execute_status":"Success","output":""}`));
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(MOCK_ORIGIN, outDir, { dispatcher: agent }));

    expect(manifest.error?.kind).toBe('invalid_response');
    expect(manifest.error?.message).toContain('data.0.execute_id');
    expect(manifest.error?.logid).toBe(LOGID);
    expect(manifest.execute_status).toBeNull();
    expect(existsSync(path.join(outDir, WORKFLOW, EXECUTE_ID, 'execution.json'))).toBe(false);
  });

  it('unsafe sub_execute_id names field', async () => {
    const status = `{"首个":{"node_id":"320","is_finish":true,"node_execute_uuid":"d4000000-0000-4000-8000-000000000001","sub_execute_id":7431826405913479001}}`;
    const agent = mockRunHistory(
      envelope(`{"execute_id":"${EXECUTE_ID}","execute_status":"Success","output":"","node_execute_status":${status}}`),
    );
    const manifest = await archiveExecutionOutputs(options(MOCK_ORIGIN, await newOutDir(), { dispatcher: agent }));
    const entry = manifest.nodes[0]!;

    expect(manifest.error).toBeUndefined();
    expect(manifest.execution_file).toBe('execution.json');
    expect(manifest.nodes).toHaveLength(1);
    expect(entry.title).toBe('首个');
    expect(entry.status).toBe('failed');
    expect(entry.error?.kind).toBe('invalid_response');
    expect(entry.error?.message).toContain('node_execute_status.首个.sub_execute_id: numeric id 7431826405913479000 is beyond 2^53');
  });

  it('execution.json keeps raw bytes', async () => {
    // Indentation, \u escapes and an unknown integer beyond 2^53 all change when a body is parsed and serialized again.
    const body = [
      '{',
      '  "code": 0,',
      '  "msg": "",',
      '  "data": [',
      '    {',
      `      "execute_id": "${EXECUTE_ID}",`,
      '      "execute_status": "Success",',
      '      "output": "{\\"Output\\":\\"\\\\u5b8c\\\\u6210\\"}",',
      '      "cost_micros": 12345678901234567891,',
      '      "note": "caf\\u00e9"',
      '    }',
      '  ],',
      `  "detail": { "logid": "${LOGID}" }`,
      '}',
      '',
    ].join('\n');
    const agent = mockRunHistory(body);
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(MOCK_ORIGIN, outDir, { dispatcher: agent }));
    const folder = path.join(outDir, WORKFLOW, EXECUTE_ID);
    const saved = await readFile(path.join(folder, 'execution.json'));

    expect(manifest.error).toBeUndefined();
    expect(saved.equals(Buffer.from(body, 'utf8'))).toBe(true);
    expect(await readFile(path.join(folder, manifest.nodes[0]!.file!), 'utf8')).toBe('完成');
  });

  it('safe numeric id is accepted', async () => {
    const agent = mockRunHistory(envelope('{"execute_id":12345,"execute_status":"Success","output":"{\\"Output\\":\\"done\\"}"}'));
    const outDir = await newOutDir();
    const manifest = await archiveExecutionOutputs(options(MOCK_ORIGIN, outDir, { dispatcher: agent }));
    const entry = manifest.nodes[0]!;

    expect(manifest.error).toBeUndefined();
    expect(manifest.run_history_logid).toBe(LOGID);
    expect(entry.title).toBe('Output');
    expect(await readFile(path.join(outDir, WORKFLOW, EXECUTE_ID, entry.file!), 'utf8')).toBe('done');
  });
});
