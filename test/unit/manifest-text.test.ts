import { describe, expect, it } from 'vitest';

import { manifestTextPieces } from '../../src/archive/manifest-writer.js';
import type { ExecutionManifest } from '../../src/archive/manifest.js';

function entry(index: number): Record<string, unknown> {
  return {
    node_execute_uuid: `uuid-${index}`,
    node_id: '100001',
    title: `章节"${index}"\n`,
    loop_index: null,
    batch_index: index,
    source: 'execute_nodes',
    status: 'saved',
    file: `nodes/章节${index}.txt`,
    bytes: 600,
    sha256: 'ab'.repeat(32),
    is_finish: true,
    possibly_incomplete: false,
    incomplete_reasons: [],
    attempts: 1,
    reason: undefined,
    error: { message: 'failed', code: undefined },
  };
}

const CASES: Record<string, Record<string, unknown>> = {
  empty: {},
  'no entries': { manifest_version: 1, totals: { saved: 0 }, nodes: [] },
  'undefined fields': { manifest_version: 1, error: undefined, nodes: [entry(1)], stopped: 'interrupted' },
  'fields after nodes': { nodes: [entry(1), entry(2)], error: { message: 'x', code: 4200 }, empty_object: {}, empty_array: [] },
  'many entries': { workflow_id: '7350000000000000091', nodes: Array.from({ length: 3_000 }, (_, index) => entry(index)) },
};

describe('manifestTextPieces', () => {
  for (const [name, manifest] of Object.entries(CASES)) {
    it(`matches JSON.stringify: ${name}`, () => {
      const text = [...manifestTextPieces(manifest as unknown as ExecutionManifest)].join('');

      expect(text).toBe(`${JSON.stringify(manifest, null, 2)}\n`);
    });
  }
});
