import { describe, expect, it } from 'vitest';

import { computeTotals, isComplete, type ExecutionManifest, type ManifestEntry } from '../src/archive/manifest.js';

// `complete` is what a cron job reads first, so each condition that withholds it is tried alone.

const SAVED: ManifestEntry = {
  node_execute_uuid: '7431826405913470101',
  node_id: '100001',
  title: '章节1',
  loop_index: null,
  batch_index: null,
  source: 'execute_nodes',
  status: 'saved',
  file: 'nodes/章节1.txt',
  bytes: 12,
  sha256: 'a'.repeat(64),
  is_finish: true,
  possibly_incomplete: false,
  incomplete_reasons: [],
  attempts: 1,
};

function finishedManifest(overrides: Partial<ExecutionManifest> = {}): ExecutionManifest {
  const nodes = overrides.nodes ?? [SAVED];
  return {
    manifest_version: 1,
    tool: 'coze-node-outputs test',
    workflow_id: '7350000000000000001',
    execute_id: '7431826405913470001',
    execute_status: 'Success',
    error_code: null,
    error_message: null,
    create_time: 1733300000,
    update_time: 1733300060,
    execution_logid: null,
    run_history_logid: null,
    is_output_trimmed: false,
    debug_url: null,
    execution_file: 'execution.json',
    execution_sha256: 'b'.repeat(64),
    started_at: '2026-12-05T10:00:00.000Z',
    updated_at: '2026-12-05T10:00:05.000Z',
    finished_at: '2026-12-05T10:00:05.000Z',
    complete: false,
    ...overrides,
    totals: computeTotals(nodes),
    nodes,
  };
}

describe('isComplete', () => {
  it('true when finished and saved', () => {
    expect(isComplete(finishedManifest())).toBe(true);
  });

  it('false before the run finishes', () => {
    expect(isComplete(finishedManifest({ finished_at: null }))).toBe(false);
  });

  it('false with an unsaved entry', () => {
    const pending: ManifestEntry = { ...SAVED, status: 'pending', file: null, bytes: null, sha256: null };
    expect(isComplete(finishedManifest({ nodes: [SAVED, pending] }))).toBe(false);
  });

  it('false for running or unread', () => {
    expect(isComplete(finishedManifest({ execute_status: 'Running' }))).toBe(false);
    expect(isComplete(finishedManifest({ execute_status: null }))).toBe(false);
  });

  it('false after a stop or error', () => {
    expect(isComplete(finishedManifest({ stopped: 'interrupted' }))).toBe(false);
    expect(isComplete(finishedManifest({ error: { message: 'execution not found', code: 4314 } }))).toBe(false);
  });
});
