import { statfs } from 'node:fs/promises';

/**
 * Disk space that one repetition's archives take, rounded up. Every run's archive of small
 * outputs stays until the bench ends (see `runOnFakeServer`): some 74,000 outputs of 600
 * bytes, which take a 4 KiB block each, about 0.3 GB of disk (estimate). A run of 4 MiB
 * outputs removes its archive when it ends, so those take at most 170 MB at a time. A quick
 * repetition writes a few thousand small files.
 */
const FULL_REPETITION_BYTES = 1024 ** 3;
const QUICK_REPETITION_BYTES = 64 * 1024 ** 2;

/**
 * Returns why the bench cannot keep its archives in `folder`, or undefined when that disk has
 * room for every repetition. Checked before the first run, so a small disk fails in a second
 * instead of filling up minutes later.
 */
export async function diskSpaceProblem(folder: string, repeat: number, quick: boolean): Promise<string | undefined> {
  const stats = await statfs(folder);
  const freeBytes = stats.bavail * stats.bsize;
  const neededBytes = repeat * (quick ? QUICK_REPETITION_BYTES : FULL_REPETITION_BYTES);
  if (freeBytes >= neededBytes) return undefined;

  return (
    `The bench keeps the archives of small outputs until it ends, which needs about ${formatMiB(neededBytes)} free in ${folder} ` +
    `for ${repeat} ${repeat === 1 ? 'repetition' : 'repetitions'}, and ${formatMiB(freeBytes)} is free. ` +
    'Free some space, lower --repeat, or set TMPDIR to a folder on a larger disk.'
  );
}

function formatMiB(bytes: number): string {
  return `${Math.floor(bytes / 1024 ** 2).toLocaleString('en-US')} MiB`;
}
