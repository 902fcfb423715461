import { z } from 'zod';

/** The programs a child process can run: the archiver or its first step alone, its peers, or nothing (the memory baseline). */
export const SUBJECTS = ['archiver', 'run-history-only', 'sequential-peer', 'naive-peer', 'undici-baseline', 'undici-fetch-only', 'idle'] as const;
export type SubjectName = (typeof SUBJECTS)[number];

export const childJobSchema = z.strictObject({
  subject: z.enum(SUBJECTS),
  baseUrl: z.string(),
  token: z.string(),
  workflowId: z.string(),
  executeId: z.string(),
  outDir: z.string(),
  qps: z.number().positive(),
  concurrency: z.int().positive(),
});

/** Job the parent sends to one child. */
export type ChildJob = z.infer<typeof childJobSchema>;

/** Outcome of one subject's run, as the subject measures it. */
export interface SubjectOutcome {
  /** Time from the first request to the last file written, in ms. Module loading is not counted. */
  wallMs: number;
  /** Node outputs the subject was asked to fetch. */
  nodes: number;
  /** Node outputs written to disk. */
  saved: number;
  /** Bytes of node output written, as the subject counts them. */
  savedBytes: number;
  /** Over-limit responses (HTTP 429 or code 4020) the subject itself received. */
  overLimitAnswers: number;
}

export const childResultSchema = z.strictObject({
  subject: z.enum(SUBJECTS),
  wallMs: z.number(),
  nodes: z.int(),
  saved: z.int(),
  savedBytes: z.number(),
  overLimitAnswers: z.int(),
  maxRssBytes: z.number(),
  cpuMs: z.number(),
});

/**
 * A subject's outcome plus the peak resident set size of its whole process, and the CPU time
 * of all its threads while the subject ran, module loading excluded.
 */
export type ChildResult = z.infer<typeof childResultSchema>;

/** Marks the one stdout line that carries the result, so stray output cannot be mistaken for it. */
export const RESULT_PREFIX = 'BENCH_RESULT ';

/** Throws unless `baseUrl` is plain http on 127.0.0.1, the only host the benchmark may reach. */
export function assertLoopback(baseUrl: string): URL {
  const url = new URL(baseUrl);
  if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1') {
    throw new TypeError(`Invalid bench base URL ${baseUrl}: the benchmark talks only to the fake server on http://127.0.0.1.`);
  }
  return url;
}
