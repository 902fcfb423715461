import { afterEach, describe, expect, it } from 'vitest';
import { MockAgent } from 'undici';

import { resolveBaseUrl } from '../../src/coze/base-url.js';
import { CozeClient } from '../../src/coze/client.js';
import { CozeRequestError } from '../../src/coze/errors.js';
import { MemorySink } from '../../src/coze/output-sink.js';

// MockAgent serves every response in-process and rejects real connections, so nothing reaches this address.
const ORIGIN = 'http://127.0.0.1:9';
/** Most tests use a path prefix so that they do not depend on how a root base URL is joined. */
const PREFIX = '/coze';
const TOKEN = 'pat_unitTestToken_9f8e7d';
const WORKFLOW_ID = '7400000000000000001';
const EXECUTE_ID = '7512345678901234567';
const NODE_UUID = '7f3a9c2e-1b4d-4e8f-9a0b-123456789abc';
const HISTORY_PATH = `/v1/workflows/${WORKFLOW_ID}/run_histories/${EXECUTE_ID}`;
const NODE_PATH = `${HISTORY_PATH}/execute_nodes/${NODE_UUID}`;
const JSON_HEADERS = { 'content-type': 'application/json' };

const agents: MockAgent[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.close();
});

function setup(baseUrl = `${ORIGIN}${PREFIX}`, maxResponseBytes = 1_000_000) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  agents.push(agent);

  const client = new CozeClient({
    baseUrl: resolveBaseUrl(baseUrl),
    token: TOKEN,
    timeoutMs: 2_000,
    maxResponseBytes,
    connections: 1,
    dispatcher: agent,
  });
  return { agent, pool: agent.get(ORIGIN), client };
}

/** Runs a call that must fail and returns its CozeRequestError. */
async function failure(call: Promise<unknown>): Promise<CozeRequestError> {
  const error = await call.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(CozeRequestError);
  return error as CozeRequestError;
}

// The spacing is unusual on purpose, so a re-serialised body would not equal the served bytes.
const HISTORY_BODY = Buffer.from(
  `{"code":0, "msg":"",\n "data":[{"execute_id":"${EXECUTE_ID}","execute_status":"Success",` +
    `"bot_id":"0","output":"{\\"Output\\":\\"完成\\"}","node_execute_status":{},"error_code":"",` +
    `"token":"1532","cost":"0.00","usage":{"input_count":1,"output_count":2,"token_count":3}}],` +
    `"detail":{"logid":"DETAIL_LOGID"}}`,
  'utf8',
);

describe('CozeClient.getRunHistory', () => {
  it('code 0 returns record and raw body', async () => {
    const { pool, client, agent } = setup();
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}`, method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } })
      .reply(200, HISTORY_BODY, { headers: { ...JSON_HEADERS, 'X-Tt-Logid': 'HEADER_LOGID' } });

    const result = await client.getRunHistory(WORKFLOW_ID, EXECUTE_ID);

    expect(result.record.execute_id).toBe(EXECUTE_ID);
    expect(result.record.execute_status).toBe('Success');
    expect(result.record['token']).toBe('1532');
    expect(result.rawBody.equals(HISTORY_BODY)).toBe(true);
    expect(result.logid).toBe('HEADER_LOGID');
    expect(result.httpStatus).toBe(200);
    agent.assertNoPendingInterceptors();
  });

  it('root base URL requests /v1 path', async () => {
    const { pool, client, agent } = setup(ORIGIN);
    pool.intercept({ path: HISTORY_PATH, method: 'GET' }).reply(200, HISTORY_BODY, { headers: JSON_HEADERS });

    const result = await client.getRunHistory(WORKFLOW_ID, EXECUTE_ID);

    expect(result.record.execute_id).toBe(EXECUTE_ID);
    agent.assertNoPendingInterceptors();
  });

  it('logid from detail without header', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, HISTORY_BODY, { headers: JSON_HEADERS });

    const result = await client.getRunHistory(WORKFLOW_ID, EXECUTE_ID);

    expect(result.logid).toBe('DETAIL_LOGID');
  });

  it('non-zero code with HTTP 200', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(200, { code: 4009, msg: 'system request cap reached', detail: { logid: 'DETAIL_LOGID' } }, {
        headers: { ...JSON_HEADERS, 'X-Tt-Logid': 'HEADER_LOGID' },
      });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('api');
    expect(error.httpStatus).toBe(200);
    expect(error.code).toBe(4009);
    expect(error.cozeMsg).toBe('system request cap reached');
    expect(error.logid).toBe('HEADER_LOGID');
    expect(error.endpoint).toBe('run_history');
    expect(error.workflowId).toBe(WORKFLOW_ID);
    expect(error.executeId).toBe(EXECUTE_ID);
    expect(error.message).toBe('Coze returned code 4009 (system request cap reached) with HTTP 200');
  });

  it('non-zero code takes logid from detail', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(401, { code: 4100, msg: 'authentication is invalid', detail: { logid: 'DETAIL_LOGID' } }, {
        headers: JSON_HEADERS,
      });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('api');
    expect(error.httpStatus).toBe(401);
    expect(error.code).toBe(4100);
    expect(error.logid).toBe('DETAIL_LOGID');
  });

  it('HTML 502 is an http error', async () => {
    const { pool, client } = setup();
    const html = '<html><head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body></html>';
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(502, html, { headers: { 'content-type': 'text/html', 'X-Tt-Logid': 'GATEWAY_LOGID' } });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('http');
    expect(error.httpStatus).toBe(502);
    expect(error.code).toBeUndefined();
    expect(error.bodyStart).toBe('<html><head><title>502 Bad Gateway</title></head>');
    expect(error.logid).toBe('GATEWAY_LOGID');
  });

  it('2xx non-JSON is invalid_json', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, '{"code":0,"data":[{"execu', { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('invalid_json');
    expect(error.httpStatus).toBe(200);
    expect(error.bodyStart).toBe('{"code":0,"data":[{"execu');
  });

  it('body over maxResponseBytes is too_large', async () => {
    const { pool, client } = setup(`${ORIGIN}${PREFIX}`, 1_000);
    const body = JSON.stringify({ code: 0, data: [{ execute_id: EXECUTE_ID, execute_status: 'Success', output: 'x'.repeat(5_000) }] });
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(200, body, { headers: { ...JSON_HEADERS, 'X-Tt-Logid': 'BIG_LOGID' } });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('too_large');
    expect(error.httpStatus).toBe(200);
    expect(error.logid).toBe('BIG_LOGID');
    expect(error.message).toContain('maximum response size of 1000 bytes');
  });

  it('body exactly maxResponseBytes accepted', async () => {
    const { pool, client } = setup(`${ORIGIN}${PREFIX}`, HISTORY_BODY.length);
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, HISTORY_BODY, { headers: JSON_HEADERS });

    const result = await client.getRunHistory(WORKFLOW_ID, EXECUTE_ID);

    expect(result.rawBody.length).toBe(HISTORY_BODY.length);
  });

  it('token scrubbed from Coze message', async () => {
    const { pool, client } = setup();
    const echoed = `bad header "Authorization: Bearer ${TOKEN}"; token ${TOKEN} is not valid`;
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(401, { code: 700012006, msg: echoed }, { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.cozeMsg).toBe('bad header "Authorization: Bearer [REDACTED]"; token [REDACTED] is not valid');
    expect(error.message).not.toContain(TOKEN);
    expect(error.message).toContain('Bearer [REDACTED]');
  });

  it('token scrubbed from non-JSON body start', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(403, `denied for ${TOKEN}`, { headers: { 'content-type': 'text/plain' } });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('http');
    expect(error.bodyStart).toBe('denied for [REDACTED]');
    expect(error.message).not.toContain(TOKEN);
  });

  it('Retry-After seconds carried', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(429, { code: 4020, msg: 'rpm peak exceeded' }, { headers: { ...JSON_HEADERS, 'Retry-After': '3' } });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('api');
    expect(error.retryAfterMs).toBe(3_000);
  });

  it('unusable Retry-After marked -1', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .reply(429, { code: 4020, msg: 'rpm peak exceeded' }, { headers: { ...JSON_HEADERS, 'Retry-After': 'soon' } });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.retryAfterMs).toBe(-1);
  });

  it('code 0 with HTTP 500 is an http error', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(500, { code: 0, msg: '' }, { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('http');
    expect(error.httpStatus).toBe(500);
    expect(error.code).toBe(0);
  });

  it('empty data array is invalid_response', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, { code: 0, data: [] }, { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('invalid_response');
    expect(error.message).toMatch(/^Unexpected response shape: data: /);
  });

  it('odd node runs are listed apart', async () => {
    const { pool, client } = setup();
    const statuses = {
      正文: { node_id: '7350000000000000101', is_finish: true, node_execute_uuid: 'u-1' },
      摘要: { node_id: '7350000000000000102', is_finish: true },
      附录: { node_id: 103.5, is_finish: 'yes', node_execute_uuid: 'u-3' },
    };
    const data = [{ execute_id: EXECUTE_ID, execute_status: 'Success', node_execute_status: statuses }];
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, { code: 0, data }, { headers: JSON_HEADERS });

    const result = await client.getRunHistory(WORKFLOW_ID, EXECUTE_ID);

    expect(Object.keys(result.record.node_execute_status!)).toEqual(['正文']);
    expect(result.invalidNodeRuns).toEqual([
      { title: '摘要', message: 'node_execute_status.摘要.node_execute_uuid: missing, expected string' },
      {
        title: '附录',
        message:
          'node_execute_status.附录.node_id: numeric id 103.5 is not a whole number; ' +
          'node_execute_status.附录.is_finish: expected boolean, received string',
      },
    ]);
    expect(JSON.parse(result.rawBody.toString('utf8')).data[0].node_execute_status).toEqual(statuses);
  });

  it('odd node run beside a record fault throws', async () => {
    const { pool, client } = setup();
    const data = [{ execute_id: EXECUTE_ID, node_execute_status: { 摘要: { node_id: '7350000000000000102', is_finish: true } } }];
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, { code: 0, data }, { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('invalid_response');
    expect(error.message).toContain('data.0.execute_status: missing, expected string');
    expect(error.message).toContain('data.0.node_execute_status.摘要.node_execute_uuid: missing, expected string');
  });

  it('missing record field is called missing', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, { code: 0, data: [{ execute_id: EXECUTE_ID }] }, { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.message).toBe('Unexpected response shape: data.0.execute_status: missing, expected string');
  });

  it('numeric execute_id beyond 2^53 names the field', async () => {
    const { pool, client } = setup();
    const body = `{"code":0,"data":[{"execute_id":${EXECUTE_ID},"execute_status":"Success"}]}`;
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, body, { headers: JSON_HEADERS });

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('invalid_response');
    expect(error.message).toContain('data.0.execute_id: ');
  });

  it('connection reset is a transport error', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${HISTORY_PATH}` })
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID));

    expect(error.kind).toBe('transport');
    expect(error.undiciCode).toBe('ECONNRESET');
    expect(error.httpStatus).toBeUndefined();
  });

  it('aborted signal is an aborted error', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(200, HISTORY_BODY, { headers: JSON_HEADERS }).delay(1_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);

    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID, controller.signal));

    expect(error.kind).toBe('aborted');
  });
});

describe('CozeClient.getNodeOutput', () => {
  it('code 0 returns the text', async () => {
    const { pool, client, agent } = setup();
    const text = '第一段：很长的中文输出。\n{"id":7512345678901234567}';
    pool
      .intercept({ path: `${PREFIX}${NODE_PATH}`, method: 'GET' })
      .reply(200, { code: 0, msg: 'Success', data: { is_finish: false, node_output: text }, detail: { logid: 'NODE_LOGID' } }, {
        headers: JSON_HEADERS,
      });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result).toEqual({ isFinish: false, nodeOutput: Buffer.from(text, 'utf8'), logid: 'NODE_LOGID', httpStatus: 200 });
    agent.assertNoPendingInterceptors();
  });

  it('escaped characters keep their bytes', async () => {
    const { pool, client } = setup();
    // Every kind of JSON escape, a surrogate pair among them, decoded straight to bytes.
    const body = '{"code":0,"msg":"Success","data":{"is_finish":true,"node_output":"\\u4e2d\\u6587 \\ud83d\\ude00 \\"q\\"\\n"}}';
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(body, 'utf8'), { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from('中文 😀 "q"\n', 'utf8'));
  });

  it('raw UTF-8 bytes pass unchanged', async () => {
    const { pool, client } = setup();
    const text = 'café © 中文输出 😀\t"quoted"\\';
    const body = JSON.stringify({ code: 0, msg: 'Success', data: { is_finish: true, node_output: text }, detail: { logid: 'LOG_中' } });
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(body, 'utf8'), { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from(text, 'utf8'));
    expect(result.logid).toBe('LOG_中');
  });

  it('node_output key outside data ignored', async () => {
    const { pool, client } = setup();
    const body = '{"code":0,"detail":{"node_output":"de\\ncoy","logid":"L1"},"data":{"node_output":"real\\n","is_finish":true}}';
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(body, 'utf8'), { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from('real\n', 'utf8'));
    expect(result.logid).toBe('L1');
  });

  it('repeated node_output key: last wins', async () => {
    const { pool, client } = setup();
    const body = '{"code":0,"data":{"node_output":"first","is_finish":true,"node_output":"second"}}';
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(body, 'utf8'), { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from('second', 'utf8'));
  });

  it('raw control character is invalid_json', async () => {
    const { pool, client } = setup();
    const body = '{"code":0,"data":{"is_finish":true,"node_output":"line\u0001 one"}}';
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(body, 'utf8'), { headers: JSON_HEADERS });

    const error = await failure(client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID));

    expect(error.kind).toBe('invalid_json');
  });

  it('invalid UTF-8 becomes U+FFFD', async () => {
    const { pool, client } = setup();
    const body = Buffer.concat([
      Buffer.from('{"code":0,"msg":"","data":{"is_finish":true,"node_output":"a', 'utf8'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('b"}}', 'utf8'),
    ]);
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, body, { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from('a\ufffd\ufffdb', 'utf8'));
  });

  // Past 64 KiB of body the client no longer keeps the raw bytes, so these need another request.
  const LONG_TEXT = '长'.repeat(30_000);
  const REPEATED_KEY_BODY = `{"code":0,"data":{"node_output":"${LONG_TEXT}","is_finish":true,"node_output":"second"}}`;

  it('large body, repeated key: unreadable_stream', async () => {
    const { agent, pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${NODE_PATH}` })
      .reply(200, Buffer.from(REPEATED_KEY_BODY, 'utf8'), { headers: { ...JSON_HEADERS, 'X-Tt-Logid': 'STREAM_LOGID' } });

    const error = await failure(client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID));

    expect(Buffer.byteLength(REPEATED_KEY_BODY)).toBeGreaterThan(64 * 1024);
    expect(error.kind).toBe('unreadable_stream');
    expect(error.httpStatus).toBe(200);
    expect(error.logid).toBe('STREAM_LOGID');
    expect(error.nodeExecuteUuid).toBe(NODE_UUID);
    expect(error.message).toContain(`${Buffer.byteLength(REPEATED_KEY_BODY)} bytes`);
    agent.assertNoPendingInterceptors();
  });

  it('large body, repeated key: read whole', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(REPEATED_KEY_BODY, 'utf8'), { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID, undefined, { whole: true });

    expect(result.nodeOutput).toEqual(Buffer.from('second', 'utf8'));
    expect(result.isFinish).toBe(true);
  });

  it('invalid UTF-8 in first chunk: kept bytes', async () => {
    const { agent, pool, client } = setup();
    const body = Buffer.concat([
      Buffer.from(`{"code":0,"msg":"","data":{"is_finish":true,"node_output":"${LONG_TEXT}`, 'utf8'),
      Buffer.from([0xff]),
      Buffer.from('b"}}', 'utf8'),
    ]);
    // MockAgent sends the body as one chunk, so the decoder gives up before dropping it.
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, body, { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from(`${LONG_TEXT}\ufffdb`, 'utf8'));
    agent.assertNoPendingInterceptors();
  });

  it('onResponse runs before body read', async () => {
    const { pool, client } = setup();
    const text = '输出节点的内容';
    pool
      .intercept({ path: `${PREFIX}${NODE_PATH}` })
      .reply(200, { code: 0, msg: 'Success', data: { is_finish: true, node_output: text } }, { headers: JSON_HEADERS });
    pool.intercept({ path: `${PREFIX}${HISTORY_PATH}` }).reply(429, { code: 4013, msg: 'too many requests' }, { headers: JSON_HEADERS });
    const sink = new MemorySink();
    const sinkBytesAtResponse: number[] = [];

    await client.streamNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID, sink, undefined, { onResponse: () => sinkBytesAtResponse.push(sink.bytes().length) });
    let historyResponses = 0;
    const error = await failure(client.getRunHistory(WORKFLOW_ID, EXECUTE_ID, undefined, { onResponse: () => (historyResponses += 1) }));

    expect(sinkBytesAtResponse).toEqual([0]);
    expect(sink.bytes().toString('utf8')).toBe(text);
    // An over-limit response counts too: Coze counted the request.
    expect(error.httpStatus).toBe(429);
    expect(historyResponses).toBe(1);
  });

  it('unreadable stream leaves the sink empty', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(REPEATED_KEY_BODY, 'utf8'), { headers: JSON_HEADERS });
    const sink = new MemorySink();

    const error = await failure(client.streamNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID, sink));

    expect(error.kind).toBe('unreadable_stream');
    expect(sink.bytes().length).toBe(0);
  });

  it('large readable body: one request', async () => {
    const { agent, pool, client } = setup();
    const body = `{"code":0,"data":{"node_output":"${LONG_TEXT}\\n${LONG_TEXT}","is_finish":true}}`;
    pool.intercept({ path: `${PREFIX}${NODE_PATH}` }).reply(200, Buffer.from(body, 'utf8'), { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput).toEqual(Buffer.from(`${LONG_TEXT}\n${LONG_TEXT}`, 'utf8'));
    agent.assertNoPendingInterceptors();
  });

  it('null node_output is empty', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${NODE_PATH}` })
      .reply(200, { code: 0, msg: '', data: { is_finish: true, node_output: null } }, { headers: JSON_HEADERS });

    const result = await client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID);

    expect(result.nodeOutput.length).toBe(0);
    expect(result.isFinish).toBe(true);
  });

  it('expired node carries the node uuid', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: `${PREFIX}${NODE_PATH}` })
      .reply(200, { code: 4200, msg: 'resource not found' }, { headers: { ...JSON_HEADERS, 'X-Tt-Logid': 'EXPIRED_LOGID' } });

    const error = await failure(client.getNodeOutput(WORKFLOW_ID, EXECUTE_ID, NODE_UUID));

    expect(error.kind).toBe('api');
    expect(error.code).toBe(4200);
    expect(error.endpoint).toBe('execute_node');
    expect(error.nodeExecuteUuid).toBe(NODE_UUID);
    expect(error.logid).toBe('EXPIRED_LOGID');
  });
});

describe('MemorySink', () => {
  it('write copies each piece', async () => {
    const sink = new MemorySink();
    const reused = Buffer.from('输出');

    await sink.write(reused);
    reused.fill(0x61);
    await sink.write(reused);

    expect(sink.bytes()).toEqual(Buffer.concat([Buffer.from('输出'), Buffer.alloc(reused.length, 0x61)]));
  });
});
