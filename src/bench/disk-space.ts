import { statfs } from 'node:fs/promises';

/**
 * Disk space that one repetition's archives take, rounded up. Every run's archive stays until
 * the bench ends (see `runOnFakeServer`). A full repetition writes about 1.1 GB of files: some
 * 74,000 outputs of 600 bytes, which take a 4 KiB block each, and 260 bodies or outputs of
 * 4 MiB, so about 1.4 GB of disk (estimate). A quick one writes a few thousand small files.
 */
const FULL_REPETITION_BYTES = 2 * 1024 ** 3;
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
    `The bench keeps every run's archive until it ends, which needs about ${formatMiB(neededBytes)} free in ${folder} ` +
    `for ${repeat} ${repeat === 1 ? 'repetition' : 'repetitions'}, and ${formatMiB(freeBytes)} is free. ` +
    'Free some space, lower --repeat, or set TMPDIR to a folder on a larger disk.'
  );
}

function formatMiB(bytes: number): string {
  return `${Math.floor(bytes / 1024 ** 2).toLocaleString('en-US')} MiB`;
}
