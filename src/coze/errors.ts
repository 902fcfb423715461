/**
 * The kind of failure of one request to Coze. One error class with a `kind` keeps the retry
 * table in one place: the policy looks at `kind`, `httpStatus`, `code` and `undiciCode`.
 */
export type CozeErrorKind =
  /** The envelope carried a non-zero `code`, whatever the HTTP status. */
  | 'api'
  /** A non-2xx HTTP status without a Coze envelope, such as an HTML gateway page. */
  | 'http'
  /** A 2xx body that is not JSON, for example a proxy page or a cut body. */
  | 'invalid_json'
  /**
   * A 2xx body over 64 KiB that could not be read as it arrived: cut short, or not laid out
   * as usual. The client no longer keeps it, so a later attempt must fetch it again to read it whole.
   */
  | 'unreadable_stream'
  /** JSON that does not match the documented shape. */
  | 'invalid_response'
  /** The connection failed, timed out or closed before the body ended. */
  | 'transport'
  /** The body grew past the configured maximum response size. */
  | 'too_large'
  /** Coze asked for a wait longer than the configured cap. */
  | 'retry_after_too_long'
  /** The run was interrupted. */
  | 'aborted';

export interface CozeErrorDetails {
  kind: CozeErrorKind;
  message: string;
  endpoint: 'run_history' | 'execute_node';
  httpStatus?: number | undefined;
  code?: number | undefined;
  cozeMsg?: string | undefined;
  logid?: string | undefined;
  undiciCode?: string | undefined;
  retryAfterMs?: number | undefined;
  bodyStart?: string | undefined;
  workflowId?: string | undefined;
  executeId?: string | undefined;
  nodeExecuteUuid?: string | undefined;
  cause?: unknown;
}

export class CozeRequestError extends Error {
  override readonly name = 'CozeRequestError';
  readonly kind: CozeErrorKind;
  readonly endpoint: 'run_history' | 'execute_node';
  readonly httpStatus: number | undefined;
  readonly code: number | undefined;
  readonly cozeMsg: string | undefined;
  readonly logid: string | undefined;
  readonly undiciCode: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly bodyStart: string | undefined;
  readonly workflowId: string | undefined;
  readonly executeId: string | undefined;
  readonly nodeExecuteUuid: string | undefined;

  constructor(details: CozeErrorDetails) {
    super(details.message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = details.kind;
    this.endpoint = details.endpoint;
    this.httpStatus = details.httpStatus;
    this.code = details.code;
    this.cozeMsg = details.cozeMsg;
    this.logid = details.logid;
    this.undiciCode = details.undiciCode;
    this.retryAfterMs = details.retryAfterMs;
    this.bodyStart = details.bodyStart;
    this.workflowId = details.workflowId;
    this.executeId = details.executeId;
    this.nodeExecuteUuid = details.nodeExecuteUuid;
  }
}

/** Coze codes that mean the token is invalid or lacks permission: the whole run stops. */
export const AUTH_ERROR_CODES: ReadonlySet<number> = new Set([4100, 4101, 700012006]);

export function isAuthError(error: unknown): error is CozeRequestError {
  return (
    error instanceof CozeRequestError &&
    ((error.code !== undefined && AUTH_ERROR_CODES.has(error.code)) ||
      (error.code === undefined && (error.httpStatus === 401 || error.httpStatus === 403)))
  );
}

/**
 * Code 4101: the token is valid but may not read this workflow. It stops that execution
 * only, and the exit code is 3 as for a rejected token.
 */
export function isPermissionDenied(error: unknown): error is CozeRequestError | AuthError {
  return (error instanceof AuthError || isAuthError(error)) && error.code === 4101;
}

/** Invalid options or input: the CLI maps it to exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Advice after a rejected token, naming every place the token and the API site can be set. */
export const TOKEN_ADVICE =
  'Check the token (--token-file, COZE_API_TOKEN or COZE_API_KEY), that it has the listRunHistory permission, and that ' +
  'the API site (--region, --base-url or COZE_API_BASE) is where it was issued (coze.cn or coze.com).';

/** Error for a token that Coze rejected or that lacks permission. The CLI maps it to exit code 3. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly logid: string | undefined;
  readonly code: number | undefined;
  /** The message without the advice, for log lines that come before the message itself. */
  readonly reason: string;

  constructor(reason: string, cause: CozeRequestError, advice?: string) {
    super(advice === undefined ? reason : `${reason} ${advice}`, { cause });
    this.reason = reason;
    this.logid = cause.logid;
    this.code = cause.code;
  }
}

/** The archive folder cannot be written (full, read-only, no permission): the run stops. */
export class ArchiveWriteError extends Error {
  override readonly name = 'ArchiveWriteError';
  readonly path: string;
  readonly errno: string | undefined;

  /** `afterFix` ends the advice with what to do once the disk is fixed. */
  constructor(path: string, cause: NodeJS.ErrnoException, afterFix = 'then run the same command again to resume') {
    super(`Cannot write ${path}: ${cause.code ?? 'error'} (${cause.message}). ${diskAdvice(cause.code)}, ${afterFix}.`, { cause });
    this.path = path;
    this.errno = cause.code;
  }
}

/** Returns what fixes a disk error of `code`, as the start of a sentence. */
function diskAdvice(code: string | undefined): string {
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'Free space on that disk';
  if (code === 'EROFS') return 'Mount that disk read-write or choose a folder on another one';
  if (code === 'EACCES' || code === 'EPERM') return 'Give this user write permission there';
  return 'Free space or fix permissions';
}

/** Coze has sent no usable response for longer than the run's outage limit: the run stops. */
export class CozeOutageError extends Error {
  override readonly name = 'CozeOutageError';
}

/**
 * One output's file cannot be written for a cause at its own path, such as a folder where the
 * file should be. That entry fails and the run goes on, unlike an `ArchiveWriteError`.
 */
export class OutputWriteError extends Error {
  override readonly name = 'OutputWriteError';
  readonly errno: string | undefined;

  /** `file` is the output's path relative to its execution folder. */
  constructor(file: string, cause: NodeJS.ErrnoException) {
    super(`Could not save ${file}: ${explainWriteFault(cause)}`, { cause });
    this.errno = cause.code;
  }
}

function explainWriteFault(cause: NodeJS.ErrnoException): string {
  if (cause.code === 'EISDIR') return 'a folder is in its place. Move the folder out of the way, then fetch again.';
  // Node's message names what went wrong before its first comma, and the absolute paths after it.
  const fault = cause.message.split(', ')[0];
  return `${fault}${cause.syscall === undefined ? '' : ` (${cause.syscall})`}. Fetch again once that is fixed.`;
}
