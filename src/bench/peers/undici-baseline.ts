import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { Agent, request } from 'undici';

import type { ChildJob, SubjectOutcome } from '../child-protocol.js';
import { listNodeUuids, nodeUrl } from './peer-http.js';

/** Handler for one response body, returning the number of bytes it kept. */
type BodyHandler = (body: Readable, index: number) => Promise<number>;

/**
 * Fetches the same node URLs with the least work: `concurrency` workers stream each raw
 * response body straight to a file, with no parsing, validation, hashing, fsync or rename.
 * Its throughput is the maximum the archiver is compared against when bytes bind.
 */
export function runUndiciBaseline(job: ChildJob): Promise<SubjectOutcome> {
  return fetchEveryNode(job, async (body, index) => {
    const file = createWriteStream(path.join(job.outDir, `${index}.json`));
    await pipeline(body, file);
    return file.bytesWritten;
  });
}

/**
 * Fetches with the same workers but drops each body: the fastest this machine and the fake
 * server can respond, which shows how much of a gap to a limit belongs to the machine.
 */
export function runUndiciFetchOnly(job: ChildJob): Promise<SubjectOutcome> {
  return fetchEveryNode(job, async (body) => {
    let bytes = 0;
    for await (const chunk of body) bytes += (chunk as Buffer).length;
    return bytes;
  });
}

async function fetchEveryNode(job: ChildJob, handleBody: BodyHandler): Promise<SubjectOutcome> {
  const dispatcher = new Agent({ connections: job.concurrency });
  const outcome: SubjectOutcome = { wallMs: 0, nodes: 0, saved: 0, savedBytes: 0, overLimitAnswers: 0 };

  try {
    const started = performance.now();
    const uuids = await listNodeUuids(job, dispatcher);
    outcome.nodes = uuids.length;

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < uuids.length) {
        const index = next;
        next += 1;
        await fetchNode(job, uuids[index]!, index, dispatcher, handleBody, outcome);
      }
    };
    await Promise.all(Array.from({ length: job.concurrency }, worker));

    outcome.wallMs = performance.now() - started;
    return outcome;
  } finally {
    await dispatcher.close();
  }
}

async function fetchNode(
  job: ChildJob,
  uuid: string,
  index: number,
  dispatcher: Agent,
  handleBody: BodyHandler,
  outcome: SubjectOutcome,
): Promise<void> {
  const response = await request(nodeUrl(job, uuid), {
    method: 'GET',
    headers: { authorization: `Bearer ${job.token}` },
    dispatcher,
  });
  const bytes = await handleBody(response.body, index);

  if (response.statusCode === 429) outcome.overLimitAnswers += 1;
  if (response.statusCode !== 200) return;
  outcome.saved += 1;
  outcome.savedBytes += bytes;
}
