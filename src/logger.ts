import pino, { type DestinationStream, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

import { UNSAFE_RAW_IN_JSON, unicodeEscape } from './http/redact.js';

/**
 * Every place a request header or token can travel in a log object. The client never logs
 * headers, so this is a second line of defence for callers who log their own objects.
 */
export const REDACTED_PATHS = [
  'token',
  'authorization',
  'Authorization',
  'headers.authorization',
  'headers.Authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'options.headers.authorization',
  'err.headers.authorization',
  '*.token',
  '*.authorization',
  '*.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.*.headers.authorization',
  '*.*.headers.Authorization',
];

export interface LoggerOptions {
  level?: string;
  /** Pretty lines for a person at a terminal; JSON lines for cron and log collectors. */
  pretty?: boolean;
  /** Stream for JSON lines in place of stderr, used by tests and embedding programs. Pretty output ignores it. */
  destination?: DestinationStream;
  /**
   * Stream for pretty lines in place of stderr, such as a progress bar's log stream. The lines
   * are then formatted in this thread, so they reach the stream in order with the bar.
   */
  prettyDestination?: NodeJS.WritableStream;
}

/**
 * Hooks that escape what a node title or a Coze message could carry into a log line: characters
 * that break a line for line-based log readers, or start escape sequences or turn the text's
 * direction on a terminal. A JSON line keeps each value, while a pretty line shows the escape itself.
 */
const JSON_LINE_HOOKS = { streamWrite: (line: string) => line.replace(UNSAFE_RAW_IN_JSON, unicodeEscape) };
const PRETTY_LINE_HOOKS = { streamWrite: (line: string) => line.replace(UNSAFE_RAW_IN_JSON, (character) => `\\${unicodeEscape(character)}`) };

/** Creates the CLI's logger, which writes to stderr so stdout stays free for `--json`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const redact = { paths: REDACTED_PATHS, censor: '[REDACTED]' };

  if (options.pretty && options.prettyDestination !== undefined) {
    const destination = pinoPretty({ destination: options.prettyDestination, colorize: true, ignore: 'pid,hostname', sync: true });
    return pino({ level, redact, hooks: PRETTY_LINE_HOOKS }, destination);
  }
  if (options.pretty) {
    return pino({
      level,
      redact,
      hooks: PRETTY_LINE_HOOKS,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, redact, base: undefined, hooks: JSON_LINE_HOOKS }, options.destination ?? pino.destination({ dest: 2, sync: true }));
}

/** Creates a logger that discards everything, the library's default. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
