import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { errorResponse, sendResponse, type PreparedResponse } from './response.js';
import { ExecutionModel } from './execution-model.js';
import { applyFault, FaultPlan } from './faults.js';
import { buildResponse, executionKey, type HandlerContext } from './handlers.js';
import { createLogid } from './ids.js';
import { SlidingWindowLimiter } from './rate-limiter.js';
import { RequestLog } from './request-log.js';
import { matchRoute, type RouteMatch } from './routes.js';
import { loadScenario, parseScenario, type LatencySetting, type ParsedScenario, type RateLimitSetting } from './scenario.js';
import type { FakeCozeServer, FakeCozeServerOptions, RecordedRequest } from './types.js';

/** Everything one running server shares between requests. */
interface ServerState {
  handler: HandlerContext;
  latency: LatencySetting;
  rateLimit: RateLimitSetting | null;
  limiter: SlidingWindowLimiter | undefined;
  faults: FaultPlan;
  log: RequestLog;
  closing: AbortController;
}

/**
 * Starts a Coze-compatible server on 127.0.0.1 that serves the scenario's
 * executions and applies its faults. Resolves once the server is listening.
 */
export async function startFakeCozeServer(options: FakeCozeServerOptions): Promise<FakeCozeServer> {
  const scenario = typeof options.scenario === 'string'
    ? parseScenario(loadScenario(options.scenario), options.scenario)
    : parseScenario(options.scenario, 'options.scenario');
  const state = createState(scenario, options);

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    void handleRequest(req, res, state);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const port = await listen(server, options.port ?? 0);
  let closed: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: state.log.requests,
    countRequests: (filter) => state.log.count(filter),
    maxRequestsInWindow: (windowMs) => state.log.maxInWindow(windowMs),
    overLimitCount: () => state.log.overLimitCount(),
    // A second close() returns the first one's promise, so tests may close in a test and in a hook.
    close: () => (closed ??= closeServer(server, sockets, state.closing)),
  };
}

function createState(scenario: ParsedScenario, options: FakeCozeServerOptions): ServerState {
  const now = options.now ?? Date.now;
  const startMs = now();

  const executions = new Map<string, ExecutionModel>();
  for (const execution of scenario.executions) {
    executions.set(executionKey(execution.workflowId, execution.executeId), new ExecutionModel(execution, scenario.expiry, startMs));
  }

  const rateLimit = resolveRateLimit(scenario.rateLimit, options.rateLimit);
  const closing = new AbortController();
  // Every delayed or stalled request listens on this signal, and a benchmark runs hundreds at once.
  setMaxListeners(0, closing.signal);

  return {
    handler: { token: options.token ?? scenario.token, auth: scenario.auth, jsonEscapes: scenario.jsonEscapes, executions, now },
    latency: options.latencyMs ?? scenario.latencyMs,
    rateLimit,
    limiter: rateLimit === null ? undefined : new SlidingWindowLimiter(rateLimit.qps),
    faults: new FaultPlan(scenario.faults),
    log: new RequestLog(),
    closing,
  };
}

function resolveRateLimit(
  fromScenario: RateLimitSetting | null,
  override: FakeCozeServerOptions['rateLimit'],
): RateLimitSetting | null {
  if (override === undefined) {
    return fromScenario;
  }
  if (override === null) {
    return null;
  }
  return { qps: override.qps, answer: override.answer ?? 'http429' };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Loopback only: this server exists for tests and demos on the same machine.
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('fake Coze server did not get a TCP address'));
        return;
      }
      resolve(address.port);
    });
  });
}

function closeServer(server: Server, sockets: Set<Socket>, closing: AbortController): Promise<void> {
  closing.abort();
  return new Promise((resolve, reject) => {
    server.close((error) => (error === undefined ? resolve() : reject(error)));
    for (const socket of sockets) {
      socket.destroy();
    }
  });
}

async function handleRequest(req: IncomingMessage, res: ServerResponse, state: ServerState): Promise<void> {
  const match = matchRoute(req.method ?? 'GET', req.url ?? '/');
  const recorded = recordRequest(req, match, state.log);
  const logid = createLogid(state.handler.now());

  // Limiter and fault rules decide on arrival, so their counts follow arrival order even under latency.
  const overLimit = state.limiter !== undefined && !state.limiter.tryAcquire(recorded.receivedAt);
  const rule = overLimit ? undefined : state.faults.select(match);
  recorded.overLimit = overLimit;
  if (rule !== undefined) {
    recorded.fault = rule.name ?? rule.action.type;
  }

  const pause = (ms: number | undefined): Promise<boolean> => pauseUnlessClosing(ms, state.closing.signal);
  if (!(await pause(latencyFor(state.latency, match.route)))) {
    return;
  }

  try {
    if (overLimit) {
      sendResponse(res, rateLimitedResponse(state.rateLimit, logid), recorded);
      return;
    }
    const buildNormal = (): PreparedResponse => buildResponse(match, req.headers.authorization, logid, state.handler);
    if (rule === undefined) {
      sendResponse(res, buildNormal(), recorded);
      return;
    }
    await applyFault(rule.action, { req, res, recorded, match, logid, buildNormal, pause });
  } catch (error) {
    sendInternalError(res, recorded, logid, error);
  }
}

function recordRequest(req: IncomingMessage, match: RouteMatch, log: RequestLog): RecordedRequest {
  const request: Omit<RecordedRequest, 'seq'> = {
    method: req.method ?? '',
    path: match.path,
    route: match.route,
    status: 0,
    overLimit: false,
    receivedAt: performance.now(),
  };
  if (match.workflowId !== undefined) request.workflowId = match.workflowId;
  if (match.executeId !== undefined) request.executeId = match.executeId;
  if (match.nodeExecuteUuid !== undefined) request.nodeExecuteUuid = match.nodeExecuteUuid;
  if (req.headers.authorization !== undefined) request.authorization = req.headers.authorization;
  return log.add(request);
}

function latencyFor(latency: LatencySetting, route: RouteMatch['route']): number {
  if (typeof latency === 'number') {
    return latency;
  }
  return (route === 'unknown' ? latency.other : latency[route]) ?? 0;
}

// NOTE: Coze documents no over-limit response. HTTP 429, or HTTP 200 with code 4020, are the likely ones.
function rateLimitedResponse(rateLimit: RateLimitSetting | null, logid: string): PreparedResponse {
  const status = rateLimit?.answer === 'code4020' ? 200 : 429;
  return errorResponse(status, 4020, logid);
}

async function pauseUnlessClosing(ms: number | undefined, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) {
    return false;
  }
  if (ms === 0) {
    return true;
  }
  if (ms === undefined) {
    // Stalled for good: only close() ends the wait, by destroying the socket.
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    return false;
  }
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function sendInternalError(res: ServerResponse, recorded: RecordedRequest, logid: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`fake Coze server: request ${recorded.seq} ${recorded.method} ${recorded.path} failed: ${message}\n`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendResponse(res, errorResponse(500, 5000, logid, `fake server error: ${message}`), recorded);
}
