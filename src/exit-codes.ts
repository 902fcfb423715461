import type { ExecutionManifest } from './archive/manifest.js';

/** Process exit codes; the README documents each. */
export const EXIT_CODES = {
  /** Every entry saved; flags alone do not fail a run. */
  ok: 0,
  /** Some entries or executions failed, expired or were not found. */
  failed: 1,
  /** Invalid usage or configuration. */
  usage: 2,
  /** The token was rejected or lacks permission (4100, 4101, 700012006). */
  auth: 3,
  /** Nothing failed, but an execution is still running or has unfinished nodes. */
  pending: 4,
  sigint: 130,
  sigterm: 143,
} as const;

/** Maps the manifests of a finished run to an exit code. */
export function exitCodeFor(manifests: readonly ExecutionManifest[]): number {
  const failed = manifests.some(
    (m) => m.error !== undefined || m.stopped !== undefined || m.totals.failed > 0 || m.totals.expired > 0,
  );
  if (failed) return EXIT_CODES.failed;

  const pending = manifests.some((m) => m.execute_status === 'Running' || m.totals.pending > 0);
  return pending ? EXIT_CODES.pending : EXIT_CODES.ok;
}
