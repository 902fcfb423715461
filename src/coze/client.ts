import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';

import { parseRetryAfter } from '../http/retry-after.js';
import { firstLine, scrubSecret } from '../http/redact.js';
import { CozeRequestError, type CozeErrorDetails } from './errors.js';
import { findNodeOutput, type NodeOutputSpan } from './node-output-bytes.js';
import {
  describeIssues,
  envelopeSchema,
  nodeOutputSchema,
  runHistoryDataSchema,
  type RunHistoryRecord,
} from './schemas.js';

export interface CozeClientOptions {
  baseUrl: URL;
  token: string;
  /** Connect, headers and body-idle timeout of one request, in milliseconds. */
  timeoutMs: number;
  /** A body longer than this ends the request with a `too_large` error. */
  maxResponseBytes: number;
  /** Sockets kept per origin; match it to the run's concurrency. */
  connections: number;
  /** A dispatcher for unit tests (undici `MockAgent`); by default the client owns an Agent. */
  dispatcher?: Dispatcher;
  userAgent?: string;
}

export interface RunHistoryResult {
  record: RunHistoryRecord;
  /** The response body byte for byte, so the archive keeps every id digit and unknown key. */
  rawBody: Buffer;
  logid: string | undefined;
  httpStatus: number;
}

export interface NodeOutputResult {
  isFinish: boolean | undefined;
  /** `node_output` as UTF-8 bytes, ready to write. */
  nodeOutput: Buffer;
  logid: string | undefined;
  httpStatus: number;
}

type Endpoint = CozeErrorDetails['endpoint'];

interface RequestIds {
  workflowId: string;
  executeId: string;
  nodeExecuteUuid?: string;
}

interface RawResponse {
  status: number;
  logid: string | undefined;
  retryAfterMs: number | undefined;
  body: Buffer;
}

/** A client for the two Coze run-history endpoints. One attempt per call; retries live above it. */
export class CozeClient {
  private readonly options: CozeClientOptions;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;

  constructor(options: CozeClientOptions) {
    this.options = options;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connections: options.connections,
        connect: { timeout: options.timeoutMs },
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
  }

  async getRunHistory(workflowId: string, executeId: string, signal?: AbortSignal): Promise<RunHistoryResult> {
    const ids = { workflowId, executeId };
    const path = `/v1/workflows/${encodeURIComponent(workflowId)}/run_histories/${encodeURIComponent(executeId)}`;
    const response = await this.send('run_history', path, ids, signal);
    const data = this.readEnvelope('run_history', response, ids);
    const records = this.validate('run_history', runHistoryDataSchema, data, 'data', response, ids);

    return { record: records[0]!, rawBody: response.body, logid: response.logid, httpStatus: response.status };
  }

  async getNodeOutput(
    workflowId: string,
    executeId: string,
    nodeExecuteUuid: string,
    signal?: AbortSignal,
  ): Promise<NodeOutputResult> {
    const ids = { workflowId, executeId, nodeExecuteUuid };
    if (nodeExecuteUuid === '.' || nodeExecuteUuid === '..') {
      // URL parsing removes dot segments even when percent-encoded, so the request would go elsewhere.
      throw this.error('execute_node', ids, {
        kind: 'invalid_response',
        message: `Invalid node_execute_uuid "${nodeExecuteUuid}" in the run history: a dot segment would change the request path.`,
      });
    }
    const path =
      `/v1/workflows/${encodeURIComponent(workflowId)}/run_histories/${encodeURIComponent(executeId)}` +
      `/execute_nodes/${encodeURIComponent(nodeExecuteUuid)}`;
    const response = await this.send('execute_node', path, ids, signal);
    const fast = readNodeOutputFast(response);
    if (fast !== undefined) return fast;

    const data = this.readEnvelope('execute_node', response, ids);
    const output = this.validate('execute_node', nodeOutputSchema, data, 'data', response, ids);

    return {
      isFinish: output.is_finish,
      nodeOutput: Buffer.from(output.node_output, 'utf8'),
      logid: response.logid,
      httpStatus: response.status,
    };
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async send(endpoint: Endpoint, path: string, ids: RequestIds, signal?: AbortSignal): Promise<RawResponse> {
    const basePath = this.options.baseUrl.pathname.replace(/\/+$/, '');
    const url = `${this.options.baseUrl.origin}${basePath}${path}`;
    let status = 0;
    let logid: string | undefined;
    let retryAfterMs: number | undefined;

    try {
      const response = await request(url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        signal,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          accept: 'application/json',
          'user-agent': this.options.userAgent ?? 'coze-node-outputs',
        },
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
      });
      status = response.statusCode;
      logid = headerValue(response.headers['x-tt-logid']);
      retryAfterMs = parseRetryAfter(response.headers['retry-after']);
      const rawRetryAfter = headerValue(response.headers['retry-after']);

      const declaredLength = Number(headerValue(response.headers['content-length']) ?? Number.NaN);
      const body = await readBounded(response.body, this.options.maxResponseBytes, declaredLength, () => {
        throw this.error(endpoint, ids, {
          kind: 'too_large',
          httpStatus: status,
          logid,
          message: `Response is larger than the maximum response size of ${this.options.maxResponseBytes} bytes; raise --max-response-size if the output is really this large.`,
        });
      });
      return { status, logid, retryAfterMs: retryAfterMs ?? invalidRetryAfter(rawRetryAfter), body };
    } catch (error) {
      if (error instanceof CozeRequestError) throw error;
      throw this.transportError(endpoint, ids, error, status, logid, signal);
    }
  }

  /** Parses the envelope and returns `data`, or throws for a non-zero code or a bad body. */
  private readEnvelope(endpoint: Endpoint, response: RawResponse, ids: RequestIds): unknown {
    const text = response.body.toString('utf8');
    const isSuccessStatus = response.status >= 200 && response.status < 300;
    let json: unknown;

    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw this.error(endpoint, ids, {
        kind: isSuccessStatus ? 'invalid_json' : 'http',
        httpStatus: response.status,
        logid: response.logid,
        retryAfterMs: response.retryAfterMs,
        bodyStart: this.bodyStart(text),
        message: `HTTP ${response.status} with a body that is not JSON: ${this.bodyStart(text) || '(empty body)'}`,
        cause,
      });
    }

    const envelope = envelopeSchema.safeParse(json);
    if (!envelope.success) {
      throw this.error(endpoint, ids, {
        kind: isSuccessStatus ? 'invalid_response' : 'http',
        httpStatus: response.status,
        logid: response.logid,
        retryAfterMs: response.retryAfterMs,
        bodyStart: this.bodyStart(text),
        message: `HTTP ${response.status} without a Coze envelope: ${describeIssues(envelope.error, 'body')}`,
      });
    }

    const { code, msg, data, detail } = envelope.data;
    const logid = response.logid ?? detail?.logid ?? undefined;
    if (code !== 0) {
      const cozeMsg = this.scrub(msg ?? '');
      throw this.error(endpoint, ids, {
        kind: 'api',
        httpStatus: response.status,
        code,
        cozeMsg,
        logid,
        retryAfterMs: response.retryAfterMs,
        message: `Coze returned code ${code}${cozeMsg ? ` (${cozeMsg})` : ''} with HTTP ${response.status}`,
      });
    }
    if (!isSuccessStatus) {
      throw this.error(endpoint, ids, {
        kind: 'http',
        httpStatus: response.status,
        code,
        logid,
        retryAfterMs: response.retryAfterMs,
        bodyStart: this.bodyStart(text),
        message: `HTTP ${response.status} with code 0`,
      });
    }

    response.logid = logid;
    return data;
  }

  private validate<T extends z.ZodType>(
    endpoint: Endpoint,
    schema: T,
    value: unknown,
    prefix: string,
    response: RawResponse,
    ids: RequestIds,
  ): z.infer<T> {
    const result = schema.safeParse(value);
    if (result.success) return result.data;

    throw this.error(endpoint, ids, {
      kind: 'invalid_response',
      httpStatus: response.status,
      logid: response.logid,
      message: `Unexpected response shape: ${describeIssues(result.error, prefix)}`,
    });
  }

  private transportError(
    endpoint: Endpoint,
    ids: RequestIds,
    error: unknown,
    status: number,
    logid: string | undefined,
    signal: AbortSignal | undefined,
  ): CozeRequestError {
    const undiciCode = errorCode(error);
    if (signal?.aborted || undiciCode === 'UND_ERR_ABORTED' || (error as Error | undefined)?.name === 'AbortError') {
      return this.error(endpoint, ids, { kind: 'aborted', message: 'Request aborted', undiciCode, cause: error });
    }

    const reason = error instanceof Error ? error.message : String(error);
    const hint = undiciCode?.includes('TIMEOUT') ? '; raise --timeout if Coze is slow' : '';
    return this.error(endpoint, ids, {
      kind: 'transport',
      httpStatus: status === 0 ? undefined : status,
      logid,
      undiciCode,
      message: `${status === 0 ? 'Request failed' : `Response body failed after HTTP ${status}`}: ${undiciCode ?? 'error'} ${this.scrub(reason)}${hint}`,
      cause: error,
    });
  }

  private error(endpoint: Endpoint, ids: RequestIds, details: Omit<CozeErrorDetails, 'endpoint'>): CozeRequestError {
    return new CozeRequestError({ endpoint, ...ids, ...details });
  }

  /** Returns the first line of a body for an error, scrubbed before it is cut so no part of a token survives. */
  private bodyStart(text: string): string {
    return firstLine(this.scrub(firstLine(text, Number.POSITIVE_INFINITY)));
  }

  private scrub(text: string): string {
    return scrubSecret(text, this.options.token);
  }
}

/**
 * Reads a successful execute-node body without decoding `node_output` into a string (see
 * `findNodeOutput`). Returns undefined where the full parse must decide: a non-2xx status,
 * a Coze error code, or a body that path does not read exactly.
 */
function readNodeOutputFast(response: RawResponse): NodeOutputResult | undefined {
  if (response.status < 200 || response.status >= 300) return undefined;
  const span = findNodeOutput(response.body);
  if (span === undefined) return undefined;

  // The body is parsed twice, with a different placeholder in place of the value. Only the
  // `data.node_output` that was cut out can equal both, so a `"node_output"` key elsewhere
  // in the body, or a repeated key, falls back to the full parse.
  const first = parseAroundOutput(span, OUTPUT_PLACEHOLDERS[0]);
  const second = parseAroundOutput(span, OUTPUT_PLACEHOLDERS[1]);
  if (first === undefined || second === undefined) return undefined;

  const bodyLogid = first.envelope.detail?.logid;
  return {
    isFinish: first.output.is_finish,
    nodeOutput: span.decode(),
    logid: response.logid ?? (typeof bodyLogid === 'string' ? bodyLogid : undefined),
    httpStatus: response.status,
  };
}

const OUTPUT_PLACEHOLDERS = ['\u0000node_output:a', '\u0000node_output:b'] as const;

function parseAroundOutput(span: NodeOutputSpan, placeholder: string) {
  let json: unknown;
  try {
    json = JSON.parse(`${span.before.toString('utf8')}${JSON.stringify(placeholder)}${span.after.toString('utf8')}`);
  } catch {
    return undefined;
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success || envelope.data.code !== 0) return undefined;
  const output = nodeOutputSchema.safeParse(envelope.data.data);
  if (!output.success || output.data.node_output !== placeholder) return undefined;
  return { envelope: envelope.data, output: output.data };
}

/**
 * Reads a body into one Buffer, ending it once it passes `maxBytes`. Memory per request is
 * therefore bounded by the maximum response size, not by what the server chooses to send.
 */
async function readBounded(
  body: AsyncIterable<Buffer> & { destroy(error?: Error): void },
  maxBytes: number,
  declaredLength: number,
  onTooLarge: () => never,
): Promise<Buffer> {
  // With a Content-Length the body goes straight into one buffer of that size, so a large
  // output never exists as chunks and a joined copy at once.
  const presized = Number.isSafeInteger(declaredLength) && declaredLength >= 0 && declaredLength <= maxBytes;
  let target = presized ? Buffer.allocUnsafe(declaredLength) : undefined;
  const chunks: Buffer[] = [];
  let length = 0;

  for await (const chunk of body) {
    if (length + chunk.length > maxBytes) {
      body.destroy();
      onTooLarge();
    }
    if (target !== undefined && length + chunk.length > target.length) {
      // More bytes than declared: keep what arrived and collect the rest as chunks.
      chunks.push(target.subarray(0, length));
      target = undefined;
    }
    if (target !== undefined) chunk.copy(target, length);
    else chunks.push(chunk);
    length += chunk.length;
  }
  return target !== undefined ? target.subarray(0, length) : Buffer.concat(chunks, length);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Marks a present but unusable `Retry-After` with -1, so the policy falls back to backoff. */
function invalidRetryAfter(raw: string | undefined): number | undefined {
  return raw === undefined ? undefined : -1;
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;

  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (typeof code === 'string') return code;
  if (error instanceof Error && error.message === 'terminated') return errorCode(cause) ?? 'UND_ERR_TERMINATED';
  return errorCode(cause);
}
