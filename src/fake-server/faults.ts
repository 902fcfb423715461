import type { IncomingMessage, ServerResponse } from 'node:http';

import { errorResponse, sendResponse, writeHead, type PreparedResponse } from './response.js';
import type { RouteMatch } from './routes.js';
import type { FaultAction, FaultRule } from './scenario.js';
import type { RecordedRequest } from './types.js';

/**
 * Chooses the fault rule for each request. Every rule counts the requests
 * that match its route and id filters, so `requests: [1, 3]` means the first
 * and third such requests, whichever rules fired on the others.
 */
export class FaultPlan {
  private readonly rules: FaultRule[];
  private readonly matched: number[];
  private readonly fired: number[];

  constructor(rules: FaultRule[]) {
    this.rules = rules;
    this.matched = rules.map(() => 0);
    this.fired = rules.map(() => 0);
  }

  /** Counts the request against every rule and returns the first rule that fires, if any. */
  select(match: RouteMatch): FaultRule | undefined {
    let chosen: FaultRule | undefined;

    this.rules.forEach((rule, index) => {
      if (!ruleMatches(rule, match)) {
        return;
      }
      const ordinal = (this.matched[index] ?? 0) + 1;
      this.matched[index] = ordinal;

      const inRequests = rule.requests === undefined || rule.requests.includes(ordinal);
      const underTimes = rule.times === undefined || (this.fired[index] ?? 0) < rule.times;
      if (chosen === undefined && inRequests && underTimes) {
        chosen = rule;
        this.fired[index] = (this.fired[index] ?? 0) + 1;
      }
    });

    return chosen;
  }
}

function ruleMatches(rule: FaultRule, match: RouteMatch): boolean {
  return (
    (rule.route === 'any' || rule.route === match.route) &&
    (rule.workflowId === undefined || rule.workflowId === match.workflowId) &&
    (rule.executeId === undefined || rule.executeId === match.executeId) &&
    (rule.nodeExecuteUuid === undefined || rule.nodeExecuteUuid === match.nodeExecuteUuid)
  );
}

/** Inputs a fault action needs to respond to one request. */
export interface FaultContext {
  req: IncomingMessage;
  res: ServerResponse;
  recorded: RecordedRequest;
  match: RouteMatch;
  logid: string;
  /** Builds the response the request would get without the fault. */
  buildNormal: () => PreparedResponse;
  /** Waits `ms`, or forever when `ms` is undefined. Resolves false when the server is closing. */
  pause: (ms: number | undefined) => Promise<boolean>;
}

/** Responds to a request in the broken way the action describes. */
export async function applyFault(action: FaultAction, context: FaultContext): Promise<void> {
  const { req, res, recorded, logid } = context;

  switch (action.type) {
    case 'status':
      sendResponse(res, statusResponse(action.status, action.code, action.msg, action.retryAfter, logid), recorded);
      return;
    case 'html':
      sendResponse(res, htmlResponse(action.status, action.body, action.logidHeader ? logid : undefined), recorded);
      return;
    case 'invalidJson':
      sendResponse(res, rawJsonResponse(action.status, Buffer.from(action.body), logid), recorded);
      return;
    case 'truncatedJson':
      sendResponse(res, truncatedResponse(context.buildNormal(), action.fraction), recorded);
      return;
    case 'resetBeforeHeaders':
      resetSocket(req);
      return;
    case 'resetMidBody':
      await resetMidBody(context, action.fraction);
      return;
    case 'stallBeforeHeaders':
      if (await context.pause(action.ms)) {
        sendResponse(res, context.buildNormal(), recorded);
      }
      return;
    case 'stallMidBody':
      await stallMidBody(context, action.fraction, action.ms);
      return;
    case 'slowBody':
      await sendSlowly(context, action.chunkBytes, action.delayMs);
      return;
    case 'echoHeaders':
      sendResponse(res, echoResponse(req, action.status, action.code, logid), recorded);
      return;
    case 'oversized':
      await sendOversized(context, action.bytes);
      return;
  }
}

function statusResponse(
  status: number,
  code: number,
  msg: string | undefined,
  retryAfter: string | undefined,
  logid: string,
): PreparedResponse {
  const response = errorResponse(status, code, logid, msg);
  if (retryAfter !== undefined) {
    response.headers['Retry-After'] = retryAfter;
  }
  return response;
}

function htmlResponse(status: number, body: string | undefined, logid: string | undefined): PreparedResponse {
  const headers: Record<string, string> = { 'Content-Type': 'text/html; charset=utf-8' };
  if (logid !== undefined) {
    headers['X-Tt-Logid'] = logid;
  }
  return { status, headers, body: Buffer.from(body ?? gatewayPage(status)) };
}

function gatewayPage(status: number): string {
  return [
    '<!DOCTYPE html>',
    `<html><head><title>${status} Bad Gateway</title></head>`,
    '<body>',
    `<center><h1>${status} Bad Gateway</h1></center>`,
    '<hr><center>gateway: the upstream service did not respond in time</center>',
    '</body></html>',
    '',
  ].join('\n');
}

function rawJsonResponse(status: number, body: Buffer, logid: string): PreparedResponse {
  return { status, headers: { 'Content-Type': 'application/json', 'X-Tt-Logid': logid }, body };
}

// The Content-Length matches the cut body, so the client reads it whole and only the JSON parse fails.
function truncatedResponse(normal: PreparedResponse, fraction: number): PreparedResponse {
  const { code: _code, ...rest } = normal;
  return { ...rest, body: normal.body.subarray(0, Math.floor(normal.body.length * fraction)) };
}

function echoResponse(req: IncomingMessage, status: number, code: number, logid: string): PreparedResponse {
  return errorResponse(status, code, logid, `invalid request, headers received: ${JSON.stringify(req.headers)}`);
}

// A TCP reset rather than a clean close, so the client sees ECONNRESET with no response at all.
function resetSocket(req: IncomingMessage): void {
  req.socket.resetAndDestroy();
}

// Closes without a reset: a reset could make the client's kernel drop the headers
// and the partial body it already received, and the test needs them to arrive.
async function resetMidBody(context: FaultContext, fraction: number): Promise<void> {
  const normal = context.buildNormal();
  writeHead(context.res, normal, context.recorded);
  await flushChunk(context.res, normal.body.subarray(0, Math.floor(normal.body.length * fraction)));
  context.req.socket.destroy();
}

async function stallMidBody(context: FaultContext, fraction: number, ms: number | undefined): Promise<void> {
  const normal = context.buildNormal();
  const cut = Math.floor(normal.body.length * fraction);
  writeHead(context.res, normal, context.recorded);
  await flushChunk(context.res, normal.body.subarray(0, cut));

  if (await context.pause(ms)) {
    context.res.end(normal.body.subarray(cut));
  }
}

async function sendSlowly(context: FaultContext, chunkBytes: number, delayMs: number): Promise<void> {
  const normal = context.buildNormal();
  writeHead(context.res, normal, context.recorded);

  for (let offset = 0; offset < normal.body.length; offset += chunkBytes) {
    if (offset > 0 && !(await context.pause(delayMs))) {
      return;
    }
    if (!(await writeChunk(context.res, normal.body.subarray(offset, offset + chunkBytes)))) {
      return;
    }
  }
  context.res.end();
}

const FILL_CHUNK = Buffer.from('oversized body filler, '.repeat(2800));

/**
 * Streams a valid envelope of exactly `bytes` bytes (unless the envelope alone
 * is larger), reusing one filler chunk so memory stays flat for any size.
 */
async function sendOversized(context: FaultContext, bytes: number): Promise<void> {
  const { prefix, suffix } = oversizedFrame(context.match, context.logid);
  let fill = Math.max(0, bytes - prefix.length - suffix.length);
  const response: PreparedResponse = {
    status: 200,
    code: 0,
    headers: { 'Content-Type': 'application/json', 'X-Tt-Logid': context.logid },
    body: Buffer.alloc(0),
  };
  writeHead(context.res, response, context.recorded, prefix.length + fill + suffix.length);

  if (!(await writeChunk(context.res, prefix))) return;
  while (fill > 0) {
    const size = Math.min(fill, FILL_CHUNK.length);
    if (!(await writeChunk(context.res, FILL_CHUNK.subarray(0, size)))) return;
    fill -= size;
  }
  context.res.end(suffix);
}

// The filler goes inside the one long string field of each endpoint.
function oversizedFrame(match: RouteMatch, logid: string): { prefix: Buffer; suffix: Buffer } {
  const detail = `,"detail":{"logid":${JSON.stringify(logid)}}}`;
  if (match.route === 'execute_node') {
    return {
      prefix: Buffer.from('{"code":0,"msg":"Success","data":{"is_finish":true,"node_output":"'),
      suffix: Buffer.from(`"}${detail}`),
    };
  }
  const executeId = JSON.stringify(match.executeId ?? '');
  return {
    prefix: Buffer.from(`{"code":0,"msg":"","data":[{"execute_id":${executeId},"execute_status":"Success","output":"`),
    suffix: Buffer.from(`"}]${detail}`),
  };
}

/** Writes a chunk and waits for `drain` under backpressure. Resolves false once the response is gone. */
function writeChunk(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  if (res.destroyed) {
    return Promise.resolve(false);
  }
  if (res.write(chunk)) {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const finish = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => finish(true);
    const onClose = (): void => finish(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Writes a chunk and waits until it has been handed to the socket, or the response is gone. */
function flushChunk(res: ServerResponse, chunk: Buffer): Promise<void> {
  if (res.destroyed) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const onClose = (): void => resolve();
    res.once('close', onClose);
    res.write(chunk, () => {
      res.off('close', onClose);
      resolve();
    });
  });
}
