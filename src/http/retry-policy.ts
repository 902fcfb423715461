import { CozeRequestError } from '../coze/errors.js';

/** HTTP statuses worth another attempt: timeouts, over-limit and server-side failures. */
export const RETRYABLE_HTTP_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Coze codes worth another attempt. From Coze's error-code list: 4009 system request cap,
 * 4013 model busy (treated as rate limiting by the official JS SDK), 4020 RPM peak
 * exceeded, 5000 internal error. Coze's text for each is "retry later".
 */
export const RETRYABLE_COZE_CODES: ReadonlySet<number> = new Set([4009, 4013, 4020, 5000]);

/**
 * Coze codes that another attempt cannot fix: 4000 bad parameters, 4100 invalid token,
 * 4008 daily limit reached (no retry helps before tomorrow), 4101 missing permission,
 * 4200 resource not found, 700012006 access token invalid.
 * 4314 (execution record not found) is final too, except for a young execution.
 */
export const FINAL_COZE_CODES: ReadonlySet<number> = new Set([4000, 4008, 4100, 4101, 4200, 4314, 700012006]);

/** Codes and statuses that mean "too many requests": the whole run slows down. */
export const OVER_LIMIT_COZE_CODES: ReadonlySet<number> = new Set([4009, 4013, 4020]);

/** undici and Node.js error codes of connections that failed or closed early. */
export const RETRYABLE_TRANSPORT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_TERMINATED',
]);

/** Coze may not know an execution for a short while after it starts. */
export const YOUNG_EXECUTION_MS = 60_000;

export interface RetryDecision {
  retry: boolean;
  /** True when the response reports that the run is over Coze's rate limit. */
  overLimit: boolean;
  /** Wait asked for by the server, when usable. */
  retryAfterMs: number | undefined;
}

export interface RetryContext {
  /** Age of the execution, when known, for the 4314 grace period. */
  executionAgeMs?: number | undefined;
}

/** Decides whether one failed attempt is worth another. Anything not listed is final. */
export function classifyFailure(error: unknown, context: RetryContext = {}): RetryDecision {
  if (!(error instanceof CozeRequestError)) {
    return { retry: false, overLimit: false, retryAfterMs: undefined };
  }

  const overLimit =
    error.httpStatus === 429 || (error.code !== undefined && OVER_LIMIT_COZE_CODES.has(error.code));
  const retryAfterMs = error.retryAfterMs !== undefined && error.retryAfterMs > 0 ? error.retryAfterMs : undefined;
  const decision = (retry: boolean): RetryDecision => ({ retry, overLimit, retryAfterMs });

  switch (error.kind) {
    case 'transport':
      return decision(error.undiciCode !== undefined && RETRYABLE_TRANSPORT_CODES.has(error.undiciCode));
    case 'invalid_json':
    case 'unreadable_stream':
      return decision(true);
    case 'http':
      return decision(error.httpStatus !== undefined && RETRYABLE_HTTP_STATUSES.has(error.httpStatus));
    case 'api':
      return decision(isRetryableCode(error, context));
    case 'invalid_response':
    case 'too_large':
    case 'retry_after_too_long':
    case 'aborted':
      return decision(false);
  }
}

function isRetryableCode(error: CozeRequestError, context: RetryContext): boolean {
  const code = error.code!;
  if (code === 4314) {
    return context.executionAgeMs !== undefined && context.executionAgeMs < YOUNG_EXECUTION_MS;
  }
  if (FINAL_COZE_CODES.has(code)) return false;
  if (RETRYABLE_COZE_CODES.has(code)) return true;
  return error.httpStatus !== undefined && RETRYABLE_HTTP_STATUSES.has(error.httpStatus);
}
