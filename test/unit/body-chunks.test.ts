import { setTimeout as delay } from 'node:timers/promises';
import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { bodyChunks } from '../../src/http/body-chunks.js';

/** Opens a body whose chunks the test pushes, as undici pushes a response body's. */
function openBody(): Readable {
  return new Readable({ read() {} });
}

async function collect(body: Readable, perChunk: (chunk: Buffer) => Promise<void> = async () => {}): Promise<Buffer[]> {
  const seen: Buffer[] = [];
  for await (const chunk of bodyChunks(body)) {
    seen.push(chunk);
    await perChunk(chunk);
  }
  return seen;
}

describe('bodyChunks', () => {
  it('yields waiting chunks unjoined', async () => {
    const pieces = [Buffer.from('first'), Buffer.from('second'), Buffer.from('third')];

    const joined = openBody();
    for (const piece of pieces) joined.push(piece);
    joined.push(null);
    const plain: Buffer[] = [];
    for await (const chunk of joined) plain.push(chunk as Buffer);
    expect(plain).toHaveLength(1);

    const body = openBody();
    for (const piece of pieces) body.push(piece);
    body.push(null);
    const seen = await collect(body, () => delay(5));
    expect(seen).toHaveLength(3);
    seen.forEach((chunk, index) => expect(chunk).toBe(pieces[index]));
  });

  it('pauses the body per chunk', async () => {
    const body = openBody();
    const pausedStates: boolean[] = [];
    const reading = collect(body, async () => {
      pausedStates.push(body.isPaused());
      await delay(5);
      pausedStates.push(body.isPaused());
    });

    body.push(Buffer.from('a'));
    await delay(20);
    body.push(Buffer.from('b'));
    body.push(null);

    expect((await reading).map(String)).toEqual(['a', 'b']);
    expect(pausedStates).toEqual([true, true, true, true]);
  });

  it('throws a mid-body error', async () => {
    const body = openBody();
    const reading = collect(body);
    body.push(Buffer.from('start'));
    await delay(5);
    body.destroy(new Error('socket reset'));

    await expect(reading).rejects.toThrow('socket reset');
  });

  it('throws on premature close', async () => {
    const body = openBody();
    const reading = collect(body);
    body.push(Buffer.from('start'));
    await delay(5);
    body.destroy();

    await expect(reading).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('throws an error from before reading', async () => {
    const body = openBody();
    // Another listener took the error event, so the body is only left errored.
    body.on('error', () => undefined);
    body.destroy(new Error('aborted early'));
    await delay(5);

    await expect(collect(body)).rejects.toThrow('aborted early');
  });

  it('destroys a body left early', async () => {
    const body = openBody();
    body.push(Buffer.from('one'));
    body.push(Buffer.from('two'));

    for await (const chunk of bodyChunks(body)) {
      expect(String(chunk)).toBe('one');
      break;
    }
    expect(body.destroyed).toBe(true);
  });

  it('ends an empty body', async () => {
    const body = openBody();
    body.push(null);

    expect(await collect(body)).toEqual([]);
    expect(body.readableEnded).toBe(true);
  });
});
