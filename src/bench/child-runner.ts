import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { childResultSchema, RESULT_PREFIX, type ChildJob, type ChildResult } from './child-protocol.js';

const CHILD_SCRIPT = fileURLToPath(new URL('./bench-child.js', import.meta.url));

/** Children still running, so that an interrupted bench can stop them before it removes their folders. */
const runningChildren = new Set<ChildProcess>();

/**
 * Kills every child still running. Left alone, an archiver child kept retrying for over 30 s
 * once the fake server was gone.
 */
export function killRunningChildren(): void {
  for (const child of runningChildren) child.kill('SIGKILL');
}

/**
 * Runs one job in a fresh Node process, so its peak resident set size belongs to that
 * subject alone, and returns the result line it prints. `nodeFlags` go to that Node
 * process. The child is killed after `timeoutMs`.
 */
export function runChild(job: ChildJob, timeoutMs: number, nodeFlags: readonly string[] = []): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, CHILD_SCRIPT, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    runningChildren.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Bench child ${job.subject} did not finish within ${timeoutMs} ms.\nstderr: ${stderr}`));
    }, timeoutMs);

    child.on('error', (error) => {
      runningChildren.delete(child);
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      runningChildren.delete(child);
      clearTimeout(timer);
      try {
        resolve(readResult(job, stdout, stderr, code, signal));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function readResult(job: ChildJob, stdout: string, stderr: string, code: number | null, signal: NodeJS.Signals | null): ChildResult {
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_PREFIX));
  if (code !== 0 || line === undefined) {
    throw new Error(`Bench child ${job.subject} failed (exit code ${code}, signal ${signal}) without a result.\nstderr: ${stderr}`);
  }
  return childResultSchema.parse(JSON.parse(line.slice(RESULT_PREFIX.length)));
}
