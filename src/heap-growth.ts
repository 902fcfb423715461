import process from 'node:process';
import v8 from 'node:v8';

/**
 * How far V8's old generation may grow past what the last full collection kept, in percent,
 * before the next one. V8 otherwise picks a factor of its own, up to several times the live
 * size on a machine with memory to spare. An archive run of small outputs keeps a little per
 * node and throws away the rest of every response, so that factor, not what is kept, set the
 * peak: 20,000 nodes peaked at 1.3 to 1.5 times 2,000 nodes with it, and 1.1 to 1.2 times with
 * 30 %.
 */
export const HEAP_GROWING_PERCENT = 30;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/** The cap `limitHeapGrowth` set, if it did. */
let cap: number | undefined;
/** Large outputs streaming to disk now, during which the cap is lifted. */
let largeOutputs = 0;

/**
 * Caps V8's old-generation growth at `percent` for the rest of the process, unless Node was
 * started with a `--heap-growing-percent` of its own. Returns whether it set the cap. The cap
 * is lifted while large outputs stream (see `largeOutputStarted`).
 *
 * This is a setting of the whole process, so the CLI makes it and the library does not: a
 * program that embeds the library calls this itself if it wants the same flat memory.
 */
export function limitHeapGrowth(percent: number = HEAP_GROWING_PERCENT, execArgv: readonly string[] = process.execArgv): boolean {
  if (!Number.isInteger(percent) || percent < 1 || percent > 1000) {
    const percentText = typeof percent === 'number' ? String(percent) : JSON.stringify(percent);
    throw new RangeError(`Heap growth must be a whole number of percent from 1 to 1000, got ${percentText}.`);
  }
  if (execArgv.some((argument) => FLAG.test(argument))) return false;

  cap = percent;
  if (largeOutputs === 0) setGrowingPercent(percent);
  return true;
}

/**
 * Lifts the cap while a large output streams to disk. Each piece of its body is a buffer
 * outside V8's heap, and V8 appears to count those towards the same limit. With the cap held,
 * 40 outputs of 4 MiB caused 15 to 17 full collections instead of 3 and took about a third
 * more CPU time. Calls must pair with `largeOutputEnded`. Without a cap they only count.
 */
export function largeOutputStarted(): void {
  largeOutputs += 1;
  if (largeOutputs === 1 && cap !== undefined) setGrowingPercent(0);
}

/** Puts the cap back once no large output is streaming. */
export function largeOutputEnded(): void {
  largeOutputs -= 1;
  if (largeOutputs === 0 && cap !== undefined) setGrowingPercent(cap);
}

/**
 * 0 lets V8 choose. V8 reads this flag each time it sets the next collection's limit, so a
 * change after start-up holds.
 */
function setGrowingPercent(percent: number): void {
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
