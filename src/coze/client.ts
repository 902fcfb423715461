import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';

import { parseRetryAfter } from '../http/retry-after.js';
import { firstLine, scrubSecret } from '../http/redact.js';
import { CozeRequestError, type CozeErrorDetails } from './errors.js';
import { findNodeOutput } from './node-output-bytes.js';
import { NodeOutputDecoder } from './node-output-stream.js';
import { MemorySink, type OutputSink } from './output-sink.js';
import {
  describeIssue,
  describeIssues,
  envelopeSchema,
  nodeOutputSchema,
  runHistoryDataSchema,
  type RunHistoryRecord,
} from './schemas.js';
import { transportHint, transportReason } from './transport-errors.js';

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

/** A `node_execute_status` entry left out of the record because it is not shaped as documented. */
export interface InvalidNodeRun {
  /** The entry's key: a node title, or a key Coze made up for a repeat. */
  title: string;
  /** The problems found, each with the path of its field. */
  message: string;
}

/** A validated run-history record and the `node_execute_status` entries left out of it. */
export interface ParsedRunHistory {
  record: RunHistoryRecord;
  invalidNodeRuns: InvalidNodeRun[];
}

export interface RunHistoryResult extends ParsedRunHistory {
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

/** The result of `streamNodeOutput`, whose output went to the sink. */
export interface StreamedNodeOutput {
  isFinish: boolean | undefined;
  /** Bytes of `node_output` written to the sink, after its last reset. */
  bytes: number;
  logid: string | undefined;
  httpStatus: number;
}

export interface RequestOptions {
  /** Called once when the response's headers arrive, before its body is read. */
  onResponse?: () => void;
}

export interface StreamOptions extends RequestOptions {
  /** Reads the body whole before decoding it, for a body that streaming could not read. */
  whole?: boolean;
}

/**
 * Raw bytes of a body kept while its output streams to the sink. A body that the decoder
 * gives up on within them is read again from them. After them, they are dropped, and such a
 * body fails with an `unreadable_stream` error, so that the next attempt reads it whole.
 * Keeping every chunk of 4 MiB bodies made them outlive young-generation collections, so 40
 * bodies caused a dozen major ones.
 */
const KEPT_RAW_BYTES = 64 * 1024;

type Endpoint = CozeErrorDetails['endpoint'];

interface RequestIds {
  workflowId: string;
  executeId: string;
  nodeExecuteUuid?: string;
}

interface ResponseHead {
  status: number;
  logid: string | undefined;
  retryAfterMs: number | undefined;
  /** Content-Length, or NaN without one. */
  declaredLength: number;
}

interface RawResponse {
  status: number;
  logid: string | undefined;
  retryAfterMs: number | undefined;
  body: Buffer;
}

type ResponseBody = AsyncIterable<Buffer> & { destroy(error?: Error): void };

/** Marks an error thrown by an output sink, so it reaches the caller unchanged and not as a transport error. */
class SinkError extends Error {
  constructor(readonly original: unknown) {
    super('output sink failed');
  }
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

  /**
   * Fetches the run history of one execution and validates its first record.
   * NOTE: the body is parsed whole, so memory grows with the node runs it lists. In the bench,
   * reading 20,000 of them, a body of 3.1 MB, took the process 59 to 72 MiB above idle.
   */
  async getRunHistory(workflowId: string, executeId: string, signal?: AbortSignal, options: RequestOptions = {}): Promise<RunHistoryResult> {
    const ids = { workflowId, executeId };
    const path = `/v1/workflows/${encodeURIComponent(workflowId)}/run_histories/${encodeURIComponent(executeId)}`;
    const response = await this.send('run_history', path, ids, signal, options.onResponse);
    return { ...this.readRunHistoryRecord(response, ids), rawBody: response.body, logid: response.logid, httpStatus: response.status };
  }

  /** Validates a run-history body read earlier, such as a saved execution.json, as `getRunHistory` validates a response. */
  parseRunHistory(body: Buffer, workflowId: string, executeId: string): ParsedRunHistory {
    const response: RawResponse = { status: 200, logid: undefined, retryAfterMs: undefined, body };
    return this.readRunHistoryRecord(response, { workflowId, executeId });
  }

  /**
   * Returns the first record of a run-history response, after checking the envelope and the
   * schema. Entries of `node_execute_status` that fail the schema are left out and listed,
   * so that one odd entry does not cost the outputs of all the others before Coze deletes them.
   */
  private readRunHistoryRecord(response: RawResponse, ids: RequestIds): ParsedRunHistory {
    const data = this.readEnvelope('run_history', response, ids);
    const checked = runHistoryDataSchema.safeParse(data);
    if (checked.success) return { record: checked.data[0]!, invalidNodeRuns: [] };

    const invalidNodeRuns = invalidNodeRunsIn(checked.error);
    if (invalidNodeRuns !== undefined) {
      const statuses = (data as [{ node_execute_status: Record<string, unknown> }])[0].node_execute_status;
      for (const { title } of invalidNodeRuns) delete statuses[title];
    }
    const record = this.validate('run_history', runHistoryDataSchema, data, 'data', response, ids)[0]!;
    return { record, invalidNodeRuns: invalidNodeRuns ?? [] };
  }

  /** Fetches one node run's output and returns it in memory. */
  async getNodeOutput(
    workflowId: string,
    executeId: string,
    nodeExecuteUuid: string,
    signal?: AbortSignal,
    options: StreamOptions = {},
  ): Promise<NodeOutputResult> {
    const sink = new MemorySink();
    const result = await this.streamNodeOutput(workflowId, executeId, nodeExecuteUuid, sink, signal, options);
    return { isFinish: result.isFinish, nodeOutput: sink.bytes(), logid: result.logid, httpStatus: result.httpStatus };
  }

  /**
   * Fetches one node run's output and writes it to `sink` as the body arrives (see
   * `NodeOutputDecoder`). A body the decoder cannot read is read again as a whole, after
   * `sink.reset()`, from the raw bytes kept so far. Past `KEPT_RAW_BYTES` it throws an
   * `unreadable_stream` error instead, after which `{ whole: true }` reads the body whole.
   * Errors of the sink reach the caller unchanged.
   */
  async streamNodeOutput(
    workflowId: string,
    executeId: string,
    nodeExecuteUuid: string,
    sink: OutputSink,
    signal?: AbortSignal,
    options: StreamOptions = {},
  ): Promise<StreamedNodeOutput> {
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

    const { head, value: streamed } = await this.request(
      'execute_node',
      path,
      ids,
      signal,
      (body, responseHead) => this.streamBody(body, responseHead, sink, 'execute_node', ids, options.whole !== true),
      options.onResponse,
    );
    const around = streamed.around === undefined ? undefined : readAroundOutput(streamed.around);
    if (around !== undefined) {
      return { isFinish: around.isFinish, bytes: streamed.bytes, logid: head.logid ?? around.bodyLogid, httpStatus: head.status };
    }

    await callSink(() => sink.reset());
    if (streamed.chunks === undefined) {
      throw this.error('execute_node', ids, {
        kind: 'unreadable_stream',
        httpStatus: head.status,
        logid: head.logid,
        message:
          `HTTP ${head.status} with a body of ${streamed.length} bytes that could not be read as it arrived: ` +
          'cut short, or not laid out as usual. Retries read such a body whole.',
      });
    }

    // The whole body, read as before streaming: the in-place fast path, else the full parse.
    const response: RawResponse = { status: head.status, logid: head.logid, retryAfterMs: head.retryAfterMs, body: Buffer.concat(streamed.chunks) };
    const output = readNodeOutputFast(response) ?? this.readNodeOutputSlow(response, ids);
    await callSink(() => sink.write(output.nodeOutput));
    return { isFinish: output.isFinish, bytes: output.nodeOutput.length, logid: output.logid, httpStatus: output.httpStatus };
  }

  private readNodeOutputSlow(response: RawResponse, ids: RequestIds): NodeOutputResult {
    const data = this.readEnvelope('execute_node', response, ids);
    const output = this.validate('execute_node', nodeOutputSchema, data, 'data', response, ids);
    return {
      isFinish: output.is_finish,
      nodeOutput: Buffer.from(output.node_output, 'utf8'),
      logid: response.logid,
      httpStatus: response.status,
    };
  }

  /**
   * Reads an execute-node body, decoding `node_output` into `sink` as it arrives when
   * `decode` is set, and keeps the raw chunks for the whole-body path: all of them when
   * nothing is decoded, else the first `KEPT_RAW_BYTES`. The decoding stops at the first
   * thing it cannot read, and the sink is reset then. `chunks` is undefined when they were
   * dropped. The rest of such a body is still read and thrown away, so the connection stays usable.
   */
  private async streamBody(
    body: ResponseBody,
    head: ResponseHead,
    sink: OutputSink,
    endpoint: Endpoint,
    ids: RequestIds,
    decode: boolean,
  ) {
    let chunks: Buffer[] | undefined = [];
    let length = 0;
    let written = 0;
    let decoder = decode && head.status >= 200 && head.status < 300 ? new NodeOutputDecoder() : undefined;

    for await (const chunk of body) {
      if (length + chunk.length > this.options.maxResponseBytes) {
        body.destroy();
        throw this.tooLarge(endpoint, ids, head);
      }
      chunks?.push(chunk);
      length += chunk.length;
      if (decoder === undefined) continue;

      const piece = decoder.push(chunk);
      if (piece === undefined) {
        decoder = undefined;
        written = 0;
        await callSink(() => sink.reset());
        continue;
      }
      if (piece.length > 0) {
        written += piece.length;
        await callSink(() => sink.write(piece));
      }
      if (length > KEPT_RAW_BYTES) chunks = undefined;
    }
    return { chunks, length, bytes: written, around: decoder?.finish() };
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async send(endpoint: Endpoint, path: string, ids: RequestIds, signal?: AbortSignal, onResponse?: () => void): Promise<RawResponse> {
    const { head, value: body } = await this.request(
      endpoint,
      path,
      ids,
      signal,
      (responseBody, responseHead) =>
        readBounded(responseBody, this.options.maxResponseBytes, responseHead.declaredLength, () => {
          throw this.tooLarge(endpoint, ids, responseHead);
        }),
      onResponse,
    );
    return { status: head.status, logid: head.logid, retryAfterMs: head.retryAfterMs, body };
  }

  /**
   * Sends one GET, hands the body to `readBody` and turns every failure into a `CozeRequestError`.
   * `onResponse` runs as the headers arrive, whatever the status.
   */
  private async request<T>(
    endpoint: Endpoint,
    path: string,
    ids: RequestIds,
    signal: AbortSignal | undefined,
    readBody: (body: ResponseBody, head: ResponseHead) => Promise<T>,
    onResponse?: () => void,
  ): Promise<{ head: ResponseHead; value: T }> {
    const basePath = this.options.baseUrl.pathname.replace(/\/+$/, '');
    const url = `${this.options.baseUrl.origin}${basePath}${path}`;
    let status = 0;
    let logid: string | undefined;

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
      onResponse?.();
      status = response.statusCode;
      logid = headerValue(response.headers['x-tt-logid']);
      const rawRetryAfter = headerValue(response.headers['retry-after']);
      const head: ResponseHead = {
        status,
        logid,
        retryAfterMs: parseRetryAfter(response.headers['retry-after']) ?? invalidRetryAfter(rawRetryAfter),
        declaredLength: Number(headerValue(response.headers['content-length']) ?? Number.NaN),
      };
      return { head, value: await readBody(response.body, head) };
    } catch (error) {
      if (error instanceof SinkError) throw error.original;
      if (error instanceof CozeRequestError) throw error;
      throw this.transportError(endpoint, ids, error, status, logid, signal);
    }
  }

  private tooLarge(endpoint: Endpoint, ids: RequestIds, head: ResponseHead): CozeRequestError {
    return this.error(endpoint, ids, {
      kind: 'too_large',
      httpStatus: head.status,
      logid: head.logid,
      message: `Response is larger than the maximum response size of ${this.options.maxResponseBytes} bytes; raise --max-response-size if the output is really this large.`,
    });
  }

  /** Parses the envelope and returns `data`, or throws for a non-zero code or a bad body. */
  private readEnvelope(endpoint: Endpoint, response: RawResponse, ids: RequestIds): unknown {
    const text = response.body.toString('utf8');
    const isSuccessStatus = response.status >= 200 && response.status < 300;
    let json: unknown;

    try {
      json = JSON.parse(text);
    } catch (cause) {
      const reason = isSuccessStatus ? parseFailure(cause) : '';
      throw this.error(endpoint, ids, {
        kind: isSuccessStatus ? 'invalid_json' : 'http',
        httpStatus: response.status,
        logid: response.logid,
        retryAfterMs: response.retryAfterMs,
        bodyStart: this.bodyStart(text),
        message: `HTTP ${response.status} with a body that is not JSON${reason}: ${this.bodyStart(text) || '(empty body)'}`,
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

    const reason = transportReason(error instanceof Error ? error.message : String(error));
    const hint = transportHint(undiciCode);
    const failed = status === 0 ? 'Request failed' : `Response body failed after HTTP ${status}`;
    return this.error(endpoint, ids, {
      kind: 'transport',
      httpStatus: status === 0 ? undefined : status,
      logid,
      undiciCode,
      message: `${failed}: ${describedCode(undiciCode, reason)}${this.scrub(reason)}${hint}`,
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
 * Returns the error code to put before `reason`, or an empty string when `reason` already
 * contains it, as Node's `connect ECONNREFUSED 127.0.0.1:1` does.
 */
function describedCode(code: string | undefined, reason: string): string {
  if (code !== undefined && reason.includes(code)) return '';
  return `${code ?? 'error'} `;
}

/**
 * Returns the parser's reason, such as "Bad control character in string literal in JSON at
 * position 1500012", which the start of a large body does not show. Messages that quote a
 * piece of the body are left out, because that piece could hold part of a secret.
 */
function parseFailure(cause: unknown): string {
  const message = cause instanceof SyntaxError ? cause.message : '';
  return /^[A-Za-z -]+$/.test(message.replace(/ position \d+$/, '')) ? ` (${message})` : '';
}

/**
 * Reads a successful execute-node body without decoding `node_output` into a string (see
 * `findNodeOutput`). Returns undefined where the full parse must decide: a non-2xx status,
 * a Coze error code, or a body that path does not read exactly.
 */
function readNodeOutputFast(response: RawResponse): NodeOutputResult | undefined {
  if (response.status < 200 || response.status >= 300) return undefined;
  const span = findNodeOutput(response.body);
  const around = span === undefined ? undefined : readAroundOutput(span);
  if (span === undefined || around === undefined) return undefined;

  return {
    isFinish: around.isFinish,
    nodeOutput: span.decode(),
    logid: response.logid ?? around.bodyLogid,
    httpStatus: response.status,
  };
}

/**
 * Parses the body around `node_output` twice, with a different placeholder as the value
 * each time. Only the `data.node_output` that was cut out can equal both, so a
 * `"node_output"` key elsewhere in the body, or a repeated key, returns undefined and
 * leaves the body to the full parse.
 */
function readAroundOutput(span: { before: Buffer; after: Buffer }): { isFinish: boolean | undefined; bodyLogid: string | undefined } | undefined {
  const first = parseAroundOutput(span, OUTPUT_PLACEHOLDERS[0]);
  const second = parseAroundOutput(span, OUTPUT_PLACEHOLDERS[1]);
  if (first === undefined || second === undefined) return undefined;

  const bodyLogid = first.envelope.detail?.logid;
  return { isFinish: first.output.is_finish, bodyLogid: typeof bodyLogid === 'string' ? bodyLogid : undefined };
}

const OUTPUT_PLACEHOLDERS = ['\u0000node_output:a', '\u0000node_output:b'] as const;

/**
 * Returns the `node_execute_status` entries that `error` finds fault with, one per key, or
 * undefined when any of its issues lies elsewhere in the record.
 */
function invalidNodeRunsIn(error: z.ZodError): InvalidNodeRun[] | undefined {
  const messages = new Map<string, string[]>();
  for (const issue of error.issues) {
    const [record, field, title, ...inside] = issue.path;
    if (record !== 0 || field !== 'node_execute_status' || typeof title !== 'string') return undefined;

    const described = describeIssue(issue, [field, title, ...inside]);
    messages.set(title, [...(messages.get(title) ?? []), described]);
  }
  return [...messages].map(([title, parts]) => ({ title, message: parts.join('; ') }));
}

/** Calls the sink, marking what it throws so that `request` passes it on unchanged. */
async function callSink(call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (error) {
    throw new SinkError(error);
  }
}

/** Parses the body around `node_output` with `placeholder` as its value, and checks the envelope and `data`. */
function parseAroundOutput(span: { before: Buffer; after: Buffer }, placeholder: string) {
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
