import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { Agent } from 'undici';

import type { ChildJob, SubjectOutcome } from '../child-protocol.js';
import { getJson, isOverLimit, listNodeUuids, nodeOutputOf, nodeUrl } from './peer-http.js';

/**
 * Fetches every node the way many first scripts do: one `Promise.all` over every node, with
 * no rate limit, no concurrency cap and no retry. Over-limit responses are counted and their
 * nodes are lost.
 */
export async function runNaivePeer(job: ChildJob): Promise<SubjectOutcome> {
  // An Agent without `connections` opens as many sockets as there are requests.
  const dispatcher = new Agent();
  const outcome: SubjectOutcome = { wallMs: 0, nodes: 0, saved: 0, savedBytes: 0, overLimitAnswers: 0 };

  try {
    const started = performance.now();
    const uuids = await listNodeUuids(job, dispatcher);
    outcome.nodes = uuids.length;

    await Promise.all(
      uuids.map(async (uuid, index) => {
        const response = await getJson(nodeUrl(job, uuid), job.token, dispatcher);
        const output = nodeOutputOf(response);
        if (output === undefined) {
          if (isOverLimit(response)) outcome.overLimitAnswers += 1;
          return;
        }

        const data = Buffer.from(output, 'utf8');
        await writeFile(path.join(job.outDir, `${index}.txt`), data);
        outcome.saved += 1;
        outcome.savedBytes += data.length;
      }),
    );
    outcome.wallMs = performance.now() - started;
    return outcome;
  } finally {
    await dispatcher.close();
  }
}
