import { afterEach, describe, expect, it } from 'vitest';

import {
  generateText,
  listNodeOutputs,
  loadScenario,
  parseScenario,
  startFakeCozeServer,
  type FakeCozeServer,
  type FakeCozeServerOptions,
  type Scenario,
} from '../src/fake-server/index.js';
import { SlidingWindowLimiter } from '../src/fake-server/rate-limiter.js';

const DEMO = 'fixtures/demo.json';
const EDGE = 'fixtures/edge-cases.json';
const TOKEN = 'pat_demo_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

const WF1 = '7350000000000000001';
const DEMO_DONE = '7431826405913470001';
const SUMMARY_UUID = 'c41e06dd-b63e-406f-bc2b-c1ba68166fec';
const LONG_REPORT_UUID = '3c67813f-e623-432a-94d3-b824aff1eb7b';
const LOGID = /^\d{14}[0-9A-F]{20}$/;

const servers: FakeCozeServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: FakeCozeServerOptions): Promise<FakeCozeServer> {
  const server = await startFakeCozeServer(options);
  servers.push(server);
  return server;
}

function historyPath(workflowId: string, executeId: string): string {
  return `/v1/workflows/${workflowId}/run_histories/${executeId}`;
}

function nodePath(workflowId: string, executeId: string, uuid: string): string {
  return `${historyPath(workflowId, executeId)}/execute_nodes/${uuid}`;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

async function get(server: FakeCozeServer, path: string, headers: Record<string, string> = AUTH): Promise<Reply> {
  const response = await fetch(server.url + path, { headers });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Builds a one-execution scenario with two small nodes, for fault and limiter tests. */
function smallScenario(extra: Partial<Scenario> = {}): Scenario {
  return {
    token: TOKEN,
    executions: [
      {
        workflowId: '7350000000000000501',
        executeId: '7431000000000000501',
        record: { execute_status: 'Success', output: { Output: '{"ok":true}' } },
        nodes: [
          { key: '结果一', nodeId: '1001', nodeExecuteUuid: 'node-a', text: '第一段输出：今天的巡检一切正常。' },
          { key: '结果二', nodeId: '1002', nodeExecuteUuid: 'node-b', generate: { text: 'chinese', chars: 2000 } },
        ],
      },
    ],
    ...extra,
  };
}

const SMALL_HISTORY = historyPath('7350000000000000501', '7431000000000000501');
const SMALL_NODE_A = nodePath('7350000000000000501', '7431000000000000501', 'node-a');
const SMALL_NODE_B = nodePath('7350000000000000501', '7431000000000000501', 'node-b');

describe('run history', () => {
  it('returns one record in the envelope', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, historyPath(WF1, DEMO_DONE));

    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json');
    expect(reply.headers.get('x-tt-logid')).toMatch(LOGID);
    expect(reply.json.detail.logid).toBe(reply.headers.get('x-tt-logid'));
    expect(reply.json.code).toBe(0);
    expect(reply.json.msg).toBe('');
    expect(reply.json.data).toHaveLength(1);
  });

  it('sends ids as strings and times as seconds', async () => {
    const before = Math.floor(Date.now() / 1000);
    const server = await start({ scenario: DEMO });
    const reply = await get(server, historyPath(WF1, DEMO_DONE));
    const record = reply.json.data[0];

    expect(reply.text).toContain('"execute_id":"7431826405913470001"');
    expect(reply.text).toContain('"bot_id":"0"');
    expect(reply.text).toContain('"connector_id":"1024"');
    expect(reply.text).toContain('"sub_execute_id":"7431826405913479001"');
    expect(Number.isInteger(record.create_time)).toBe(true);
    expect(record.create_time).toBeGreaterThanOrEqual(before - 1800);
    expect(record.create_time).toBeLessThanOrEqual(before - 1799);
    expect(record.update_time - record.create_time).toBe(95);
    expect(record.error_code).toBe('');
    expect('error_message' in record).toBe(false);
    expect(record.token).toBe('424298');
    expect(record.cost).toBe('0');
    expect(record.run_mode).toBe(2);
    expect(record.is_output_trimmed).toBe(false);
    expect(record.logid).toMatch(LOGID);
    expect(record.logid).not.toBe(reply.json.detail.logid);
  });

  it('puts inline outputs in output text', async () => {
    const server = await start({ scenario: DEMO });
    const record = (await get(server, historyPath(WF1, DEMO_DONE))).json.data[0];
    const output = JSON.parse(record.output);
    const summary = listNodeOutputs(DEMO, DEMO_DONE).find((node) => node.key === '生成摘要');

    expect(typeof record.output).toBe('string');
    expect(Object.keys(output)).toEqual(['Output', '生成摘要', '翻译结果', '子流程结论', 'node_status']);
    expect(output.Output).toBe('{"report_ready":true,"sections":6}');
    expect(output['生成摘要']).toBe(summary?.text());
    expect(JSON.parse(output['翻译结果']).target_language).toBe('en');
    expect(output.node_status).toBe('{}');
  });

  it('lists loop, batch and sub-workflow runs', async () => {
    const server = await start({ scenario: DEMO });
    const nodes = (await get(server, historyPath(WF1, DEMO_DONE))).json.data[0].node_execute_status;

    expect(Object.keys(nodes)).toHaveLength(10);
    expect(nodes['逐段润色']).toMatchObject({ node_id: '135204', loop_index: 0, is_finish: true });
    expect(nodes['kQ7vX2mPa9LdR4tZ']).toMatchObject({ node_id: '135204', loop_index: 1 });
    expect(nodes['Hn3sW8cYe1BfJ6uK']).toMatchObject({ node_id: '135204', loop_index: 2 });
    expect(nodes['pT5gM0xVr7NqC2wE']).toMatchObject({ node_id: '135205', batch_index: 1 });
    expect(nodes['子流程结论'].sub_execute_id).toBe('7431826405913479001');
    expect('loop_index' in nodes['子流程结论']).toBe(false);
    expect(nodes['进度提示'].is_finish).toBe(false);
    expect(nodes['长篇报告'].node_execute_uuid).toBe(LONG_REPORT_UUID);
  });

  it('sends a new logid per request', async () => {
    const server = await start({ scenario: DEMO });
    const first = await get(server, historyPath(WF1, DEMO_DONE));
    const second = await get(server, historyPath(WF1, DEMO_DONE));

    expect(first.json.detail.logid).not.toBe(second.json.detail.logid);
    expect(first.json.data[0].logid).toBe(second.json.data[0].logid);
  });

  it('shows trimmed, running and failed runs', async () => {
    const server = await start({ scenario: DEMO });
    const trimmed = (await get(server, historyPath('7350000000000000002', '7431826405913470002'))).json.data[0];
    const running = (await get(server, historyPath(WF1, '7431826405913470003'))).json.data[0];
    const failed = (await get(server, historyPath('7350000000000000003', '7431826405913470004'))).json.data[0];

    expect(trimmed.node_execute_status).toEqual({});
    expect(trimmed.is_output_trimmed).toBe(true);
    expect(JSON.parse(trimmed.output)['会议纪要']).toMatch(/并补上相应的$/);
    expect(running.execute_status).toBe('Running');
    expect(running.node_execute_status['终稿'].is_finish).toBe(false);
    expect(failed.execute_status).toBe('Fail');
    expect(failed.error_code).toBe('720701013');
    expect(failed.error_message).toContain('执行超时');
    expect(Object.keys(JSON.parse(failed.output))).toEqual(['Output', '资料检索', '初步分析']);
  });

  it('lists a node titled __proto__', async () => {
    const scenario = smallScenario();
    scenario.executions![0]!.nodes!.push({ key: '__proto__', nodeId: '1003', nodeExecuteUuid: 'node-c', text: '原型' });
    const server = await start({ scenario });
    const reply = await get(server, SMALL_HISTORY);

    expect(reply.text).toContain('"__proto__":{');
    const statuses = reply.json.data[0].node_execute_status;
    expect(Object.keys(statuses)).toEqual(['结果一', '结果二', '__proto__']);
    expect(Object.getOwnPropertyDescriptor(statuses, '__proto__')?.value.node_execute_uuid).toBe('node-c');
  });

  it('keeps unknown keys and omits an absent map', async () => {
    const server = await start({ scenario: EDGE });
    const record = (await get(server, historyPath('7350000000000000013', '7431826405913470015'))).json.data[0];

    expect(record.execute_status).toBe('Cancel');
    expect(record.future_field).toEqual({ kept: true });
    expect(record.interrupt_data.type).toBe(2);
    expect('node_execute_status' in record).toBe(false);
    expect(() => JSON.parse(record.output)).toThrow();
  });
});

describe('execute node', () => {
  it('returns node output with Success', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, nodePath(WF1, DEMO_DONE, SUMMARY_UUID));
    const expected = listNodeOutputs(DEMO, DEMO_DONE).find((node) => node.nodeExecuteUuid === SUMMARY_UUID);

    expect(reply.status).toBe(200);
    expect(reply.headers.get('x-tt-logid')).toBe(reply.json.detail.logid);
    expect(reply.json.code).toBe(0);
    expect(reply.json.msg).toBe('Success');
    expect(reply.json.data.is_finish).toBe(true);
    expect(reply.json.data.node_output).toBe(expected?.text());
  });

  it('generates the 400,000-character node', async () => {
    const server = await start({ scenario: DEMO });
    const first = await get(server, nodePath(WF1, DEMO_DONE, LONG_REPORT_UUID));
    const second = await get(server, nodePath(WF1, DEMO_DONE, LONG_REPORT_UUID));
    const output: string = first.json.data.node_output;

    expect(output).toHaveLength(400_000);
    expect(Buffer.byteLength(output)).toBe(1_187_580);
    expect(output.startsWith('一、背景\n\n')).toBe(true);
    expect(second.json.data.node_output).toBe(output);
  });

  it('returns is_finish false when scripted', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, nodePath(WF1, DEMO_DONE, '7e28b002-ef7c-4ab7-a179-4309ab461d29'));

    expect(reply.json.data.is_finish).toBe(false);
    expect(reply.json.data.node_output).toBe('报告已生成完毕，共六个部分，请在下方查看全文。');
  });
});

describe('auth', () => {
  it('rejects a missing token with 401', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, historyPath(WF1, DEMO_DONE), {});

    expect(reply.status).toBe(401);
    expect(reply.headers.get('content-type')).toBe('application/json');
    expect(reply.json.code).toBe(4100);
    expect(reply.json.msg).toBe('authentication is invalid');
    expect(reply.json.detail.logid).toBe(reply.headers.get('x-tt-logid'));
    expect(server.requests[0]?.authorization).toBeUndefined();
  });

  it('rejects a wrong token and records it', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, nodePath(WF1, DEMO_DONE, SUMMARY_UUID), { authorization: 'Bearer wrong' });

    expect(reply.status).toBe(401);
    expect(reply.json.code).toBe(4100);
    expect(server.requests[0]?.authorization).toBe('Bearer wrong');
    expect(server.requests[0]?.status).toBe(401);
    expect(server.requests[0]?.code).toBe(4100);
  });

  it('accepts the token option', async () => {
    const server = await start({ scenario: DEMO, token: 'pat_other' });
    const old = await get(server, historyPath(WF1, DEMO_DONE));
    const replaced = await get(server, historyPath(WF1, DEMO_DONE), { authorization: 'Bearer pat_other' });

    expect(old.status).toBe(401);
    expect(replaced.status).toBe(200);
  });

  it('sends the access-token-invalid variant', async () => {
    const server = await start({ scenario: smallScenario({ auth: { invalidTokenCode: 700012006 } }) });
    const reply = await get(server, SMALL_HISTORY, { authorization: 'Bearer nope' });

    expect(reply.status).toBe(401);
    expect(reply.json.code).toBe(700012006);
    expect(reply.json.msg).toBe('access token invalid');
  });

  it('sends 4101 for a forbidden workflow', async () => {
    const server = await start({ scenario: EDGE });
    const reply = await get(server, historyPath('7350000000000000099', '7431826405913470017'));

    expect(reply.status).toBe(401);
    expect(reply.json.code).toBe(4101);
  });
});

describe('not found', () => {
  it('sends 4314 for an unknown execution', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, historyPath(WF1, '7431999999999999999'));

    expect(reply.status).toBe(200);
    expect(reply.json.code).toBe(4314);
    expect(reply.json.msg).toBe('workflow execution record not found');
    expect('data' in reply.json).toBe(false);
  });

  it('sends 4314 for the wrong workflow', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, historyPath('7350000000000000002', DEMO_DONE));

    expect(reply.json.code).toBe(4314);
  });

  it('sends 4200 for an unknown node', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, nodePath(WF1, DEMO_DONE, 'no-such-node'));

    expect(reply.status).toBe(200);
    expect(reply.json.code).toBe(4200);
  });

  it('sends 404 JSON for an unknown route', async () => {
    const server = await start({ scenario: DEMO });
    const reply = await get(server, '/v1/workflow/run');

    expect(reply.status).toBe(404);
    expect(reply.headers.get('content-type')).toBe('application/json');
    expect(reply.json.msg).toBe('no such API: /v1/workflow/run');
    expect(server.requests[0]?.route).toBe('unknown');
  });
});

describe('expiry', () => {
  it('sends 4200 for an old output node', async () => {
    const server = await start({ scenario: EDGE });
    const reply = await get(
      server,
      nodePath('7350000000000000012', '7431826405913470013', 'e1ee82d7-1e9e-401e-b50c-2753895bf842'),
    );

    expect(reply.json.code).toBe(4200);
  });

  it('sends empty output when scripted', async () => {
    const server = await start({ scenario: EDGE });
    const reply = await get(
      server,
      nodePath('7350000000000000012', '7431826405913470014', '21771001-1c5a-4017-95bf-bf3c2483e041'),
    );

    expect(reply.json.code).toBe(0);
    expect(reply.json.data).toEqual({ is_finish: true, node_output: '' });
  });

  it('follows the injected clock', async () => {
    let clock = Date.now();
    const scenario = parseScenario(loadScenario(DEMO));
    scenario.expiry.answer = 'code4314';
    const server = await start({ scenario, now: () => clock });

    const fresh = await get(server, nodePath(WF1, DEMO_DONE, SUMMARY_UUID));
    clock += 25 * 3600 * 1000;
    const expired = await get(server, nodePath(WF1, DEMO_DONE, SUMMARY_UUID));
    const history = await get(server, historyPath(WF1, DEMO_DONE));

    expect(fresh.json.code).toBe(0);
    expect(expired.json.code).toBe(4314);
    expect(history.json.code).toBe(0);
  });
});

describe('timeline', () => {
  const workflow = '7350000000000000011';
  const execution = '7431826405913470011';

  it('moves from 4314 to Running to Success by polls', async () => {
    const server = await start({ scenario: EDGE });
    const statuses: string[] = [];
    const maps: Record<string, { is_finish: boolean }>[] = [];

    const notFound = await get(server, historyPath(workflow, execution));
    for (let poll = 0; poll < 3; poll += 1) {
      const record = (await get(server, historyPath(workflow, execution))).json.data[0];
      statuses.push(record.execute_status);
      maps.push(record.node_execute_status);
    }

    expect(notFound.json.code).toBe(4314);
    expect(statuses).toEqual(['Running', 'Running', 'Success']);
    expect(Object.keys(maps[0] ?? {})).toEqual(['阶段一', '阶段二']);
    expect(maps[0]?.['阶段一']?.is_finish).toBe(true);
    expect(maps[0]?.['阶段二']?.is_finish).toBe(false);
    expect(Object.keys(maps[2] ?? {})).toEqual(['阶段一', '阶段二', '阶段三']);
  });

  it('serves partial nodes while running', async () => {
    const server = await start({ scenario: EDGE });
    await get(server, historyPath(workflow, execution));
    const running = await get(server, historyPath(workflow, execution));
    const partial = await get(server, nodePath(workflow, execution, '3e3b43c6-93fe-4a8a-b0b3-c99adf1b339f'));
    const hidden = await get(server, nodePath(workflow, execution, 'e04daf4d-ca26-4d7c-8abe-7b8306952406'));
    const full = listNodeOutputs(EDGE, execution).find((node) => node.key === '阶段二')?.text() ?? '';

    expect(running.json.data[0].output).toBe('{"node_status":"{}"}');
    expect(partial.json.data.is_finish).toBe(false);
    expect(partial.json.data.node_output).toBe(full.slice(0, Math.floor(full.length / 2)));
    expect(hidden.json.code).toBe(4200);
  });

  it('finishes after time on the injected clock', async () => {
    let clock = Date.now();
    const server = await start({ scenario: EDGE, now: () => clock });
    const path = historyPath(workflow, '7431826405913470012');

    const before = (await get(server, path)).json.data[0];
    clock += 3000;
    const after = (await get(server, path)).json.data[0];

    expect(before.execute_status).toBe('Running');
    expect(before.error_code).toBe('');
    expect('error_message' in before).toBe(false);
    expect(before.node_execute_status).toEqual({});
    expect(after.execute_status).toBe('Fail');
    expect(after.error_code).toBe('720702002');
    expect(Object.keys(after.node_execute_status)).toEqual(['阶段一']);
  });
});

describe('generated nodes', () => {
  it('lists groups with invented keys', async () => {
    const server = await start({ scenario: EDGE });
    const map = (await get(server, historyPath('7350000000000000013', '7431826405913470016'))).json.data[0]
      .node_execute_status;
    const entries = Object.entries(map) as [string, { node_id: string; loop_index: number; node_execute_uuid: string }][];

    expect(entries).toHaveLength(12);
    expect(entries.map(([key]) => key).filter((key) => key.startsWith('批量摘要'))).toEqual([
      '批量摘要1',
      '批量摘要2',
      '批量摘要3',
      '批量摘要4',
    ]);
    expect(entries[1]?.[0]).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(entries.map(([, value]) => value.loop_index)).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(entries.map(([, value]) => value.node_id).slice(0, 4)).toEqual(['100001', '100001', '100001', '100002']);
    expect(entries[0]?.[1].node_execute_uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('serves each body at its exact size', async () => {
    const scenario: Scenario = {
      executions: [
        {
          workflowId: '7350000000000000601',
          executeId: '7431000000000000601',
          generatedNodes: { count: 3, bytes: 10_001, text: 'chinese', repeatsPerTitle: 1 },
        },
        {
          workflowId: '7350000000000000601',
          executeId: '7431000000000000602',
          generatedNodes: { count: 2, bytes: 777, text: 'ascii', titlePrefix: 'part' },
        },
      ],
    };
    const server = await start({ scenario });

    for (const executeId of ['7431000000000000601', '7431000000000000602']) {
      const map = (await get(server, historyPath('7350000000000000601', executeId))).json.data[0].node_execute_status;
      for (const entry of Object.values(map) as { node_execute_uuid: string }[]) {
        const reply = await get(server, nodePath('7350000000000000601', executeId, entry.node_execute_uuid));
        expect(Buffer.byteLength(reply.json.data.node_output)).toBe(executeId.endsWith('601') ? 10_001 : 777);
      }
    }
    expect(server.countRequests({ route: 'execute_node' })).toBe(5);
  });
});

describe('faults', () => {
  it('sends a scripted status with Retry-After', async () => {
    const retryAfters = ['2', 'Wed, 21 Oct 2015 07:28:00 GMT', '-3', 'soon'];
    const server = await start({
      scenario: smallScenario({
        faults: retryAfters.map((retryAfter, index) => ({
          route: 'run_history' as const,
          requests: [index + 1],
          action: { type: 'status' as const, status: 429, code: 4020, retryAfter },
        })),
      }),
    });

    for (const retryAfter of retryAfters) {
      const reply = await get(server, SMALL_HISTORY);
      expect(reply.status).toBe(429);
      expect(reply.json.code).toBe(4020);
      expect(reply.headers.get('retry-after')).toBe(retryAfter);
    }
    expect((await get(server, SMALL_HISTORY)).status).toBe(200);
  });

  it('fires on the listed requests only', async () => {
    const server = await start({
      scenario: smallScenario({
        faults: [
          { name: 'busy', route: 'execute_node', requests: [1, 3], action: { type: 'status', status: 200, code: 4009 } },
        ],
      }),
    });

    const codes: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      codes.push((await get(server, SMALL_NODE_A)).json.code);
    }

    expect(codes).toEqual([4009, 0, 4009, 0]);
    expect(server.requests.map((request) => request.fault)).toEqual(['busy', undefined, 'busy', undefined]);
  });

  it('stops after times and filters by node', async () => {
    const server = await start({
      scenario: smallScenario({
        faults: [{ nodeExecuteUuid: 'node-b', times: 2, action: { type: 'status', status: 500, code: 5000 } }],
      }),
    });

    const a = await get(server, SMALL_NODE_A);
    const b = [await get(server, SMALL_NODE_B), await get(server, SMALL_NODE_B), await get(server, SMALL_NODE_B)];

    expect(a.status).toBe(200);
    expect(b.map((reply) => reply.status)).toEqual([500, 500, 200]);
    expect(b[0]?.json.msg).toBe('internal server error, please retry later');
  });

  it('sends an HTML gateway page', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ action: { type: 'html' } }] }) });
    const reply = await get(server, SMALL_HISTORY);

    expect(reply.status).toBe(502);
    expect(reply.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(reply.text).toContain('<h1>502 Bad Gateway</h1>');
    expect(server.requests[0]?.code).toBeUndefined();
  });

  it('sends invalid and truncated JSON', async () => {
    const server = await start({
      scenario: smallScenario({
        faults: [
          { requests: [1], action: { type: 'invalidJson' } },
          { requests: [2], action: { type: 'truncatedJson' } },
        ],
      }),
    });

    const invalid = await get(server, SMALL_NODE_B);
    const response = await fetch(server.url + SMALL_NODE_B, { headers: AUTH });
    const truncated = Buffer.from(await response.arrayBuffer());
    const whole = await get(server, SMALL_NODE_B);

    expect(invalid.status).toBe(200);
    expect(invalid.json).toBeUndefined();
    expect(invalid.text).toBe('upstream response: ok');
    expect(Number(response.headers.get('content-length'))).toBe(truncated.length);
    expect(truncated.length).toBe(Math.floor(Buffer.byteLength(whole.text) / 2));
    expect(() => JSON.parse(truncated.toString('utf8'))).toThrow();
  });

  it('resets before headers', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ times: 1, action: { type: 'resetBeforeHeaders' } }] }) });

    await expect(fetch(server.url + SMALL_HISTORY, { headers: AUTH })).rejects.toThrow();
    expect(server.requests[0]?.status).toBe(0);
    expect(server.requests[0]?.fault).toBe('resetBeforeHeaders');
    expect((await get(server, SMALL_HISTORY)).status).toBe(200);
  });

  it('resets in the middle of the body', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ times: 1, action: { type: 'resetMidBody' } }] }) });
    const response = await fetch(server.url + SMALL_NODE_B, { headers: AUTH });

    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length'))).toBeGreaterThan(6000);
    await expect(response.text()).rejects.toThrow();
    expect(server.requests[0]?.code).toBe(0);
  });

  it('stalls before headers, then answers', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ action: { type: 'stallBeforeHeaders', ms: 150 } }] }) });
    const started = performance.now();
    const reply = await get(server, SMALL_NODE_A);

    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(reply.json.data.node_output).toBe('第一段输出：今天的巡检一切正常。');
  });

  it('stalls for good until close', async () => {
    const server = await start({
      scenario: smallScenario({
        faults: [
          { requests: [1], action: { type: 'stallBeforeHeaders' } },
          { requests: [2], action: { type: 'stallMidBody' } },
        ],
      }),
    });

    await expect(fetch(server.url + SMALL_NODE_B, { headers: AUTH, signal: AbortSignal.timeout(200) })).rejects.toThrow();
    const midBody = await fetch(server.url + SMALL_NODE_B, { headers: AUTH, signal: AbortSignal.timeout(300) });
    expect(midBody.status).toBe(200);
    await expect(midBody.text()).rejects.toThrow();

    const closing = performance.now();
    await server.close();
    expect(performance.now() - closing).toBeLessThan(500);
  });

  it('stalls mid-body, then finishes', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ action: { type: 'stallMidBody', ms: 100 } }] }) });
    const started = performance.now();
    const reply = await get(server, SMALL_NODE_B);

    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    expect(reply.json.data.node_output).toHaveLength(2000);
  });

  it('sends the body slowly in chunks', async () => {
    const server = await start({
      scenario: smallScenario({ faults: [{ action: { type: 'slowBody', chunkBytes: 20, delayMs: 10 } }] }),
    });
    const started = performance.now();
    const reply = await get(server, SMALL_NODE_A);

    // The body is about 150 bytes: 8 chunks with 7 pauses of 10 ms between them.
    expect(performance.now() - started).toBeGreaterThanOrEqual(60);
    expect(reply.json.data.node_output).toBe('第一段输出：今天的巡检一切正常。');
  });

  it('echoes request headers with the token', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ action: { type: 'echoHeaders' } }] }) });
    const reply = await get(server, SMALL_NODE_A);

    expect(reply.status).toBe(400);
    expect(reply.json.code).toBe(4000);
    expect(reply.json.msg).toContain('Bearer pat_demo_token');
  });

  it('streams an oversized valid body', async () => {
    const server = await start({ scenario: smallScenario({ faults: [{ action: { type: 'oversized', bytes: 3_000_000 } }] }) });
    const node = await get(server, SMALL_NODE_A);
    const history = await get(server, SMALL_HISTORY);

    expect(Buffer.byteLength(node.text)).toBe(3_000_000);
    expect(node.json.code).toBe(0);
    expect(node.json.data.node_output.length).toBeGreaterThan(2_999_000);
    expect(Buffer.byteLength(history.text)).toBe(3_000_000);
    expect(history.json.data[0].execute_id).toBe('7431000000000000501');
  });
});

describe('rate limit', () => {
  it('sends 429 above the limit', async () => {
    const server = await start({ scenario: smallScenario(), rateLimit: { qps: 5 } });
    const replies = await Promise.all(Array.from({ length: 10 }, () => get(server, SMALL_NODE_A)));
    const statuses = replies.map((reply) => reply.status).sort();

    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    expect(replies.filter((reply) => reply.status === 429).every((reply) => reply.json.code === 4020)).toBe(true);
    expect(server.overLimitCount()).toBe(5);
    expect(server.requests.filter((request) => request.overLimit).every((request) => request.status === 429)).toBe(true);
  });

  it('sends code 4020 with HTTP 200 when scripted', async () => {
    const server = await start({ scenario: smallScenario({ rateLimit: { qps: 1, answer: 'code4020' } }) });
    const first = await get(server, SMALL_HISTORY);
    const second = await get(server, SMALL_HISTORY);

    expect(first.json.code).toBe(0);
    expect(second.status).toBe(200);
    expect(second.json.code).toBe(4020);
    expect(server.requests[1]?.overLimit).toBe(true);
  });

  it('limiter accepts again after the window', () => {
    const limiter = new SlidingWindowLimiter(2, 1000);

    expect([0, 10, 20].map((time) => limiter.tryAcquire(time))).toEqual([true, true, false]);
    expect(limiter.tryAcquire(999)).toBe(false);
    expect(limiter.tryAcquire(1000)).toBe(true);
    expect(limiter.tryAcquire(1005)).toBe(false);
    expect(limiter.tryAcquire(1010)).toBe(true);
  });
});

describe('request log', () => {
  it('counts by route and window', async () => {
    const server = await start({ scenario: smallScenario() });
    await Promise.all([get(server, SMALL_HISTORY), get(server, SMALL_NODE_A), get(server, SMALL_NODE_A)]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await Promise.all([get(server, SMALL_NODE_B), get(server, '/other')]);

    expect(server.requests.map((request) => request.seq).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(server.countRequests()).toBe(5);
    expect(server.countRequests({ route: 'execute_node' })).toBe(3);
    expect(server.countRequests({ nodeExecuteUuid: 'node-a' })).toBe(2);
    expect(server.countRequests({ executeId: '7431000000000000501', route: 'run_history' })).toBe(1);
    expect(server.maxRequestsInWindow(100)).toBe(3);
    expect(server.maxRequestsInWindow(10_000)).toBe(5);
  });

  it('applies latency before headers', async () => {
    const server = await start({ scenario: smallScenario({ latencyMs: { execute_node: 120 } }) });
    const history = performance.now();
    await get(server, SMALL_HISTORY);
    const historyMs = performance.now() - history;
    const node = performance.now();
    await get(server, SMALL_NODE_A);
    const nodeMs = performance.now() - node;

    expect(historyMs).toBeLessThan(100);
    expect(nodeMs).toBeGreaterThanOrEqual(110);
  });
});

describe('scenario', () => {
  it('loads every fixture', () => {
    for (const file of ['demo', 'edge-cases', 'faults-example', 'bench']) {
      expect(() => loadScenario(`fixtures/${file}.json`)).not.toThrow();
    }
  });

  it('names the invalid field', () => {
    expect(() => parseScenario({ executions: [{ workflowId: 'abc', executeId: '1' }] }, 'test input')).toThrow(
      /invalid scenario test input:[\s\S]*expected a string of digits[\s\S]*executions\[0\]\.workflowId/,
    );
    expect(() => parseScenario({ faults: [{ action: { type: 'explode' } }] })).toThrow(/faults\[0\]\.action\.type/);
    expect(() =>
      parseScenario({ executions: [{ workflowId: '1', executeId: '2', inlineNodes: ['缺失'] }] }),
    ).toThrow(/inline node 缺失 is not the key of a listed node/);
  });

  it('lists the bench nodes without their bodies', () => {
    const nodes = listNodeOutputs('fixtures/bench.json', '7431826405913470031');

    expect(nodes).toHaveLength(20_000);
    expect(new Set(nodes.map((node) => node.nodeExecuteUuid)).size).toBe(20_000);
    expect(Buffer.byteLength(nodes[19_999]?.text() ?? '')).toBe(600);
  });
});

describe('text generator', () => {
  it('makes exact sizes', () => {
    expect(generateText({ text: 'chinese', chars: 12_345 }, 's')).toHaveLength(12_345);
    expect(Buffer.byteLength(generateText({ text: 'chinese', bytes: 12_346 }, 's'))).toBe(12_346);
    expect(Buffer.byteLength(generateText({ text: 'ascii', bytes: 5000 }, 's'))).toBe(5000);
    expect(generateText({ text: 'chinese', bytes: 0 }, 's')).toBe('');
  });

  it('is repeatable per seed', () => {
    const spec = { text: 'chinese', chars: 3000 } as const;

    expect(generateText(spec, 'a')).toBe(generateText(spec, 'a'));
    expect(generateText(spec, 'a')).not.toBe(generateText(spec, 'b'));
  });
});
