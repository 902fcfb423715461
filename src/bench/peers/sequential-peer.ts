import { performance } from 'node:perf_hooks';

import { Agent } from 'undici';

import type { ChildJob, SubjectOutcome } from '../child-protocol.js';
import { fetchAndSaveNode, listNodeUuids } from './peer-http.js';

/**
 * Fetches node results the way the official SDK examples do: reads the run history once,
 * then fetches each node result in turn and writes it out. No rate limit, no retry, one
 * request in flight.
 */
export async function runSequentialPeer(job: ChildJob): Promise<SubjectOutcome> {
  const dispatcher = new Agent({ connections: 1 });
  const outcome: SubjectOutcome = { wallMs: 0, nodes: 0, saved: 0, savedBytes: 0, overLimitAnswers: 0 };

  try {
    const started = performance.now();
    const uuids = await listNodeUuids(job, dispatcher);
    outcome.nodes = uuids.length;

    for (const [index, uuid] of uuids.entries()) {
      await fetchAndSaveNode(job, uuid, index, dispatcher, outcome);
    }
    outcome.wallMs = performance.now() - started;
    return outcome;
  } finally {
    await dispatcher.close();
  }
}
