import { InvalidArgumentError } from 'commander';

import { NODE_OUTPUT_RETENTION_MS } from '../archive/run-context.js';
import { parseDuration } from '../config/duration.js';
import { parseSize } from '../config/size.js';

/** Wraps a parser so that its RangeError becomes commander's usage error (exit code 2). */
function asArgument<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

export const durationArgument = asArgument((text) => parseDuration(text));

/** A duration that must be above zero, such as a timeout. */
export const positiveDurationArgument = asArgument((text) => {
  const ms = parseDuration(text);
  if (ms <= 0) throw new RangeError(`"${text}" is not a duration above 0.`);
  return ms;
});

/** Parses the age at which to warn about an execution: at most the 24 hours that Coze keeps its outputs. */
export const expiryWarningArgument = asArgument((text) => {
  const ms = parseDuration(text);
  if (ms > NODE_OUTPUT_RETENTION_MS) {
    throw new RangeError(`"${text}" is above 24h: Coze deletes output-node results 24h after the run, so the warning would come after they are gone.`);
  }
  return ms;
});

/** A size that must be above zero, such as the largest response accepted. */
export const positiveSizeArgument = asArgument((text) => {
  const bytes = parseSize(text);
  if (bytes <= 0) throw new RangeError(`"${text}" is not a size above 0.`);
  return bytes;
});

export const positiveNumberArgument = asArgument((text) => {
  const value = Number(text);
  // Plain decimals only, as the whole-number options take: Number() alone reads 0x10 as 16 and 1e3 as 1000.
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`"${text}" is not a number above 0, such as 20 or 0.5.`);
  }
  return value;
});

export const positiveIntegerArgument = asArgument((text) => {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value <= 0) throw new RangeError(`"${text}" is not a whole number above 0.`);
  return value;
});

export const nonNegativeIntegerArgument = asArgument((text) => {
  if (!/^\d+$/.test(text.trim())) throw new RangeError(`"${text}" is not a whole number, 0 or more.`);
  return Number(text);
});

/** Parses `--flag-bytes`: one size or a comma-separated list, for example `1MB,1MiB`. */
export const sizeListArgument = asArgument((text) => {
  const sizes = text.split(',').map((part) => {
    const size = parseSize(part, '--flag-bytes');
    if (size <= 0) throw new RangeError(`--flag-bytes "${part}" must be above 0.`);
    return size;
  });
  // A size listed twice would give each flagged output the same reason twice.
  return [...new Set(sizes)];
});

export const digitIdArgument = asArgument((text) => {
  if (!/^\d{1,32}$/.test(text)) throw new RangeError(`"${text}" is not a Coze id: ids are digit strings such as 7431234567890123456.`);
  return text;
});
