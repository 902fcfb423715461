import process from 'node:process';

import { runArchiverSubject } from './archiver-subject.js';
import { assertLoopback, childJobSchema, RESULT_PREFIX, type ChildJob, type ChildResult, type SubjectOutcome } from './child-protocol.js';
import { runNaivePeer } from './peers/naive-peer.js';
import { runSequentialPeer } from './peers/sequential-peer.js';
import { runUndiciBaseline, runUndiciFetchOnly } from './peers/undici-baseline.js';
import { runRunHistorySubject } from './run-history-subject.js';

// Every subject is imported up front, so the idle child loads the same code as the others
// and its resident set size is a fair baseline.
const SUBJECT_RUNNERS: Record<ChildJob['subject'], (job: ChildJob) => Promise<SubjectOutcome>> = {
  archiver: runArchiverSubject,
  'run-history-only': runRunHistorySubject,
  'sequential-peer': runSequentialPeer,
  'naive-peer': runNaivePeer,
  'undici-baseline': runUndiciBaseline,
  'undici-fetch-only': runUndiciFetchOnly,
  idle: () => Promise.resolve({ wallMs: 0, nodes: 0, saved: 0, savedBytes: 0, overLimitAnswers: 0 }),
};

/** Runs the job named in argv[2] and prints one result line on stdout. */
async function main(): Promise<void> {
  const job = childJobSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
  assertLoopback(job.baseUrl);

  const cpuBefore = process.cpuUsage();
  const outcome = await SUBJECT_RUNNERS[job.subject](job);
  const cpu = process.cpuUsage(cpuBefore);

  // maxRSS is in kilobytes and covers the whole life of this process.
  const result: ChildResult = {
    subject: job.subject,
    ...outcome,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

await main();
