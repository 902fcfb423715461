import { describe, expect, it } from 'vitest';

import { discoverInlineOutputs, discoverNodeRuns } from '../../src/archive/discover-entries.js';
import { runHistoryRecordSchema, type RunHistoryRecord } from '../../src/coze/schemas.js';

function record(fields: Record<string, unknown>): RunHistoryRecord {
  return runHistoryRecordSchema.parse({
    execute_id: '7512345678901234567',
    execute_status: 'Success',
    error_code: '',
    ...fields,
  });
}

describe('discoverNodeRuns', () => {
  it('one entry per node run', () => {
    const entries = discoverNodeRuns(
      record({
        node_execute_status: {
          Summary: { node_id: '100001', is_finish: true, update_time: 1_750_233_660, node_execute_uuid: 'uuid-a' },
        },
      }),
    );

    expect(entries).toEqual([
      {
        key: 'node:uuid-a',
        source: 'execute_nodes',
        title: 'Summary',
        nodeId: '100001',
        nodeExecuteUuid: 'uuid-a',
        loopIndex: null,
        batchIndex: null,
        isFinish: true,
      },
    ]);
  });

  it('duplicate uuid archived once', () => {
    const entries = discoverNodeRuns(
      record({
        node_execute_status: {
          Summary: { node_id: '100001', is_finish: true, node_execute_uuid: 'uuid-a' },
          Xr8kQ2: { node_id: '100001', is_finish: true, node_execute_uuid: 'uuid-a' },
          Other: { node_id: '100002', is_finish: false, node_execute_uuid: 'uuid-b' },
        },
      }),
    );

    expect(entries.map((entry) => entry.key)).toEqual(['node:uuid-a', 'node:uuid-b']);
    expect(entries.map((entry) => entry.title)).toEqual(['Summary', 'Other']);
  });

  it('loop repeats keep random keys as titles', () => {
    const entries = discoverNodeRuns(
      record({
        node_execute_status: {
          Item: { node_id: '200', is_finish: true, node_execute_uuid: 'u0', loop_index: 0 },
          a9F3kLq: { node_id: '200', is_finish: true, node_execute_uuid: 'u1', loop_index: 1 },
          Zt7mWp2: { node_id: '200', is_finish: false, node_execute_uuid: 'u2', loop_index: 2 },
        },
      }),
    );

    expect(entries.map((entry) => [entry.title, entry.nodeId, entry.loopIndex, entry.isFinish])).toEqual([
      ['Item', '200', 0, true],
      ['a9F3kLq', '200', 1, true],
      ['Zt7mWp2', '200', 2, false],
    ]);
  });

  it('batch index kept', () => {
    const [entry] = discoverNodeRuns(
      record({
        node_execute_status: { Batch: { node_id: '300', is_finish: true, node_execute_uuid: 'u', batch_index: 4 } },
      }),
    );

    expect(entry?.batchIndex).toBe(4);
    expect(entry?.loopIndex).toBeNull();
  });

  it('sub_execute_id kept as string', () => {
    const [entry] = discoverNodeRuns(
      record({
        node_execute_status: {
          Inner: { node_id: '400', is_finish: true, node_execute_uuid: 'u', sub_execute_id: '7511111111111111111' },
        },
      }),
    );

    expect(entry?.subExecuteId).toBe('7511111111111111111');
  });

  it('no sub_execute_id key when absent', () => {
    const [entry] = discoverNodeRuns(
      record({ node_execute_status: { A: { node_id: '1', is_finish: true, node_execute_uuid: 'u' } } }),
    );

    expect(entry).toBeDefined();
    expect(entry).not.toHaveProperty('subExecuteId');
  });

  it.each([
    ['empty map', {}],
    ['null map', null],
  ])('%s gives no entries', (_label, map) => {
    expect(discoverNodeRuns(record({ node_execute_status: map }))).toEqual([]);
  });

  it('absent map gives no entries', () => {
    expect(discoverNodeRuns(record({}))).toEqual([]);
  });
});

describe('discoverInlineOutputs', () => {
  it('output node titles and Output', () => {
    const output = JSON.stringify({ Output: '{"result":"ok"}', 摘要: '这是第一段。', node_status: '{}' });

    expect(discoverInlineOutputs(record({ output }))).toEqual([
      {
        key: 'inline:Output',
        source: 'inline',
        title: 'Output',
        nodeId: null,
        loopIndex: null,
        batchIndex: null,
        isFinish: null,
        inlineText: '{"result":"ok"}',
      },
      {
        key: 'inline:摘要',
        source: 'inline',
        title: '摘要',
        nodeId: null,
        loopIndex: null,
        batchIndex: null,
        isFinish: null,
        inlineText: '这是第一段。',
      },
    ]);
  });

  it('node_status skipped', () => {
    const entries = discoverInlineOutputs(record({ output: '{"node_status":"{}"}' }));

    expect(entries).toEqual([]);
  });

  it.each([
    ['plain text', 'workflow finished'],
    ['truncated JSON', '{"Output":"abc'],
    ['JSON array', '["a","b"]'],
    ['JSON string', '"just text"'],
    ['JSON null', 'null'],
  ])('%s archived whole as Output', (_label, output) => {
    const entries = discoverInlineOutputs(record({ output }));

    expect(entries.map((entry) => [entry.key, entry.title, entry.inlineText])).toEqual([
      ['inline:Output', 'Output', output],
    ]);
  });

  it('non-string value serialised', () => {
    const entries = discoverInlineOutputs(record({ output: '{"Output":{"n":1,"s":"x"}}' }));

    expect(entries.map((entry) => entry.inlineText)).toEqual(['{"n":1,"s":"x"}']);
  });

  it.each([
    ['empty string', ''],
    ['null', null],
  ])('%s output gives none', (_label, output) => {
    expect(discoverInlineOutputs(record({ output }))).toEqual([]);
  });

  it('absent output gives none', () => {
    expect(discoverInlineOutputs(record({}))).toEqual([]);
  });

  it('empty JSON object gives none', () => {
    expect(discoverInlineOutputs(record({ output: '{}' }))).toEqual([]);
  });
});
