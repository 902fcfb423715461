import type { Scenario } from './scenario.js';

/** One request as the fake server received it, with the response it sent. */
export interface RecordedRequest {
  /** 1-based arrival order across the whole server. */
  seq: number;
  method: string;
  path: string;
  route: 'run_history' | 'execute_node' | 'unknown';
  workflowId?: string;
  executeId?: string;
  nodeExecuteUuid?: string;
  /** Raw `Authorization` header value, so tests can check what the client sent. */
  authorization?: string;
  /** HTTP status sent, or 0 when the connection was reset before headers. */
  status: number;
  /** Coze `code` of the JSON body sent or begun, when the body was meant to be JSON. */
  code?: number;
  /** Name of the fault rule applied, or its action type when the rule has no name. */
  fault?: string;
  /** True when the server-side rate limiter rejected the request. */
  overLimit: boolean;
  /** Arrival time from `performance.now()`, in milliseconds. */
  receivedAt: number;
}

export interface FakeCozeServer {
  /** Base URL such as `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  countRequests(filter?: Partial<Pick<RecordedRequest, 'route' | 'executeId' | 'nodeExecuteUuid'>>): number;
  /** Returns the maximum number of requests that arrived within any window of `windowMs`. */
  maxRequestsInWindow(windowMs: number): number;
  overLimitCount(): number;
  /** Stops listening and destroys every open socket, stalled ones included. Safe to call twice. */
  close(): Promise<void>;
}

export interface FakeCozeServerOptions {
  /** A scenario object, or the path of a JSON scenario file. */
  scenario: Scenario | string;
  /** Port on 127.0.0.1. The default 0 picks a free one. */
  port?: number;
  /** Replaces the scenario's token. */
  token?: string;
  /** Replaces the scenario's latency for every route, in ms, waited before headers are sent. */
  latencyMs?: number;
  /** Replaces the scenario's rate limit, and `null` turns it off. */
  rateLimit?: { qps: number; answer?: 'http429' | 'code4020' } | null;
  /** Clock in Unix milliseconds for record times, timelines and expiry. Defaults to `Date.now`. */
  now?: () => number;
}
