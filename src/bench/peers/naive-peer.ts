import { performance } from 'node:perf_hooks';

import { Agent } from 'undici';

import type { ChildJob, SubjectOutcome } from '../child-protocol.js';
import { fetchAndSaveNode, listNodeUuids } from './peer-http.js';

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

    await Promise.all(uuids.map((uuid, index) => fetchAndSaveNode(job, uuid, index, dispatcher, outcome)));
    outcome.wallMs = performance.now() - started;
    return outcome;
  } finally {
    await dispatcher.close();
  }
}
