import type { ServerResponse } from 'node:http';

import { envelopeText, messageForCode } from './envelope.js';
import type { RecordedRequest } from './types.js';

/** A complete response, built before any byte is sent so faults can cut or delay it. */
export interface PreparedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Coze `code` in the body, absent when the body is not a Coze envelope. */
  code?: number;
}

/** Builds a JSON envelope response whose `X-Tt-Logid` header repeats `detail.logid`. */
export function jsonResponse(
  status: number,
  code: number,
  msg: string,
  dataText: string | undefined,
  logid: string,
): PreparedResponse {
  return {
    status,
    code,
    headers: { 'Content-Type': 'application/json', 'X-Tt-Logid': logid },
    body: Buffer.from(envelopeText(code, msg, dataText, logid)),
  };
}

/** Builds an error envelope without `data`, using the standard message for the code. */
export function errorResponse(status: number, code: number, logid: string, msg = messageForCode(code)): PreparedResponse {
  return jsonResponse(status, code, msg, undefined, logid);
}

/**
 * Sends the status line and headers, and records them. `Content-Length` is the
 * whole body's unless `contentLength` is given for a body that is streamed instead.
 */
export function writeHead(
  res: ServerResponse,
  response: PreparedResponse,
  recorded: RecordedRequest,
  contentLength = response.body.length,
): void {
  res.writeHead(response.status, { ...response.headers, 'Content-Length': String(contentLength) });
  recorded.status = response.status;
  if (response.code !== undefined) {
    recorded.code = response.code;
  }
}

/** Sends a whole response at once. */
export function sendResponse(res: ServerResponse, response: PreparedResponse, recorded: RecordedRequest): void {
  writeHead(res, response, recorded);
  res.end(response.body);
}
