import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

import { envelopeSchema, nodeExecuteStatusSchema, nodeOutputSchema, runHistoryRecordSchema } from '../../src/coze/schemas.js';

const EXECUTE_ID = '7512345678901234567';
const BOT_ID = '7498765432109876543';
const SUB_EXECUTE_ID = '7511111111111111111';

function recordWith(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    execute_id: EXECUTE_ID,
    execute_status: 'Success',
    bot_id: BOT_ID,
    connector_id: '1024',
    connector_uid: 'user-1',
    run_mode: 2,
    create_time: 1_750_233_600,
    update_time: 1_750_233_660,
    output: '{"Output":"done"}',
    node_execute_status: {},
    error_code: '',
    error_message: '',
    debug_url: 'https://www.coze.cn/work_flow?execute_id=7512345678901234567',
    is_output_trimmed: false,
    logid: '20250618080000ABCDEF',
    ...fields,
  };
}

function issuePaths(value: unknown): string[] {
  const result = runHistoryRecordSchema.safeParse(value);
  expect(result.success).toBe(false);
  return result.error!.issues.map((issue) => issue.path.join('.'));
}

describe('runHistoryRecordSchema', () => {
  it('keeps unknown keys', () => {
    const record = runHistoryRecordSchema.parse(recordWith({ token: '1532', cost: '0.00' }));

    expect(record['token']).toBe('1532');
    expect(record['cost']).toBe('0.00');
  });

  it('keeps unknown keys in node statuses', () => {
    const record = runHistoryRecordSchema.parse(
      recordWith({
        node_execute_status: {
          Summary: { node_id: '100001', is_finish: true, node_execute_uuid: 'uuid-1', extra_flag: 'kept' },
        },
      }),
    );

    expect(record.node_execute_status?.['Summary']?.['extra_flag']).toBe('kept');
  });

  it.each([
    ['empty string', '', ''],
    ['digit string', '5000', '5000'],
    ['number', 5000, '5000'],
    ['zero', 0, '0'],
    ['null', null, ''],
  ])('error_code %s', (_label, wire, expected) => {
    expect(runHistoryRecordSchema.parse(recordWith({ error_code: wire })).error_code).toBe(expected);
  });

  it('error_code absent', () => {
    const { error_code: _removed, ...wire } = recordWith({});

    expect(runHistoryRecordSchema.parse(wire).error_code).toBe('');
  });

  it('error_message absent', () => {
    const { error_message: _removed, ...wire } = recordWith({});
    const record = runHistoryRecordSchema.parse(wire);

    expect(record.error_message).toBeUndefined();
    expect('error_message' in record).toBe(false);
  });

  it('unknown execute_status accepted', () => {
    expect(runHistoryRecordSchema.parse(recordWith({ execute_status: 'Cancel' })).execute_status).toBe('Cancel');
  });

  it('19-digit string ids unchanged', () => {
    const record = runHistoryRecordSchema.parse(
      recordWith({
        node_execute_status: {
          Summary: { node_id: '100001', is_finish: true, node_execute_uuid: 'uuid-1', sub_execute_id: SUB_EXECUTE_ID },
        },
      }),
    );

    expect(record.execute_id).toBe(EXECUTE_ID);
    expect(record.bot_id).toBe(BOT_ID);
    expect(record.connector_id).toBe('1024');
    expect(record.node_execute_status?.['Summary']?.sub_execute_id).toBe(SUB_EXECUTE_ID);
  });

  it('bot_id "0" unchanged', () => {
    expect(runHistoryRecordSchema.parse(recordWith({ bot_id: '0' })).bot_id).toBe('0');
  });

  it('numeric ids within 2^53 become strings', () => {
    const record = runHistoryRecordSchema.parse(
      recordWith({ execute_id: 9_007_199_254_740_991, bot_id: 0, connector_id: 1024 }),
    );

    expect(record.execute_id).toBe('9007199254740991');
    expect(record.bot_id).toBe('0');
    expect(record.connector_id).toBe('1024');
  });

  it('numeric node_id becomes a string', () => {
    const record = runHistoryRecordSchema.parse(
      recordWith({ node_execute_status: { Summary: { node_id: 100001, is_finish: false, node_execute_uuid: 'u' } } }),
    );

    expect(record.node_execute_status?.['Summary']?.node_id).toBe('100001');
  });

  it('numeric execute_id beyond 2^53 fails', () => {
    // JSON.parse has already rounded the digits, which is why the value must be rejected.
    const wire = JSON.parse(`{"execute_id":${EXECUTE_ID},"execute_status":"Success"}`);

    expect(issuePaths(wire)).toEqual(['execute_id']);
  });

  it('numeric sub_execute_id beyond 2^53 fails', () => {
    const wire = JSON.parse(
      `{"execute_id":"${EXECUTE_ID}","execute_status":"Success","node_execute_status":` +
        `{"Summary (2)":{"node_id":"1","is_finish":true,"node_execute_uuid":"u","sub_execute_id":${SUB_EXECUTE_ID}}}}`,
    );

    expect(issuePaths(wire)).toEqual(['node_execute_status.Summary (2).sub_execute_id']);
  });

  it('fractional numeric id fails as not whole', () => {
    const result = runHistoryRecordSchema.safeParse(recordWith({ connector_id: 1.5 }));

    expect(result.error?.issues.map((issue) => issue.message)).toEqual(['numeric id 1.5 is not a whole number']);
  });

  it('numeric bot_id beyond 2^53 fails', () => {
    expect(issuePaths(recordWith({ bot_id: 2 ** 53 + 2 }))).toEqual(['bot_id']);
  });

  it('empty execute_id fails', () => {
    expect(issuePaths(recordWith({ execute_id: '' }))).toEqual(['execute_id']);
  });

  it('create_time digit string becomes number', () => {
    expect(runHistoryRecordSchema.parse(recordWith({ create_time: '1750233600' })).create_time).toBe(1_750_233_600);
  });

  it('absent and null node_execute_status', () => {
    const { node_execute_status: _removed, ...wire } = recordWith({});

    expect(runHistoryRecordSchema.parse(wire).node_execute_status).toBeUndefined();
    expect(runHistoryRecordSchema.parse(recordWith({ node_execute_status: null })).node_execute_status).toBeNull();
  });

  it('checks node runs in place', () => {
    const wire = {
      Summary: { node_id: 100001, is_finish: true, node_execute_uuid: 'u1', update_time: '1750233660', extra_flag: 'kept' },
      'Summary (2)': { node_id: '100002', is_finish: false, node_execute_uuid: 'u2', sub_execute_id: 42 },
    };

    const statuses = runHistoryRecordSchema.parse(recordWith({ node_execute_status: wire })).node_execute_status!;

    expect(statuses).toBe(wire);
    expect(statuses['Summary']).toEqual({ node_id: '100001', is_finish: true, node_execute_uuid: 'u1', update_time: 1_750_233_660, extra_flag: 'kept' });
    expect(statuses['Summary (2)']?.sub_execute_id).toBe('42');
  });

  it('names each bad node run and field', () => {
    const wire = {
      A: { node_id: '1', node_execute_uuid: 'u' },
      B: { node_id: '2', is_finish: true, node_execute_uuid: 'u', loop_index: -1 },
      C: null,
      D: { node_id: '4', is_finish: true, node_execute_uuid: 'u' },
    };

    expect(issuePaths(recordWith({ node_execute_status: wire }))).toEqual([
      'node_execute_status.A.is_finish',
      'node_execute_status.B.loop_index',
      'node_execute_status.C',
    ]);
    expect(issuePaths(recordWith({ node_execute_status: 'none' }))).toEqual(['node_execute_status']);
    expect(issuePaths(recordWith({ node_execute_status: [wire.D] }))).toEqual(['node_execute_status']);
  });

  it('agrees with the entry schema', () => {
    // For each field, values the entry schema accepts, then values it rejects.
    const choices: Record<string, [unknown[], unknown[]]> = {
      node_id: [['1', 5], ['', 2 ** 53 + 2, null, undefined, 1.5]],
      is_finish: [[true, false], ['true', undefined]],
      update_time: [[undefined, 1_750_233_660, '1750233660'], ['17x', null]],
      node_execute_uuid: [['u'], ['', undefined, 3]],
      loop_index: [[undefined, 0, 2], [-1, 1.5, null]],
      batch_index: [[undefined, 0], [2 ** 53 + 2, '1']],
      sub_execute_id: [[undefined, '7', 7], ['', 2 ** 60]],
    };
    let seed = 12345;
    const random = (count: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor(seed / 65_536) % count;
    };
    // One field in eight is bad, so about 4 entries in 10 pass and every bad value comes up often.
    const pick = ([good, bad]: [unknown[], unknown[]]): unknown => (random(8) === 0 ? bad[random(bad.length)] : good[random(good.length)]);

    let accepted = 0;
    for (let round = 0; round < 3_000; round += 1) {
      const entry = Object.fromEntries(Object.entries(choices).map(([field, values]) => [field, pick(values)]));
      const expected = nodeExecuteStatusSchema.safeParse(structuredClone(entry));
      const actual = runHistoryRecordSchema.safeParse(recordWith({ node_execute_status: { k: structuredClone(entry) } }));

      expect(actual.success, JSON.stringify(entry)).toBe(expected.success);
      if (expected.success) {
        accepted += 1;
        expect(actual.data?.node_execute_status?.['k']).toEqual(expected.data);
      } else {
        const issues = (issues: z.core.$ZodIssue[]): string[] => issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
        expect(issues(actual.error!.issues)).toEqual(issues(expected.error.issues).map((issue) => `node_execute_status.k.${issue}`));
      }
    }
    // Both verdicts are well represented, so the comparison covers each path of the check.
    expect(accepted).toBeGreaterThan(900);
    expect(accepted).toBeLessThan(2_100);
  });

  it('loop and batch indexes kept', () => {
    const record = runHistoryRecordSchema.parse(
      recordWith({
        node_execute_status: {
          k7f3a: { node_id: '1', is_finish: true, node_execute_uuid: 'u', loop_index: 2, batch_index: 0 },
        },
      }),
    );

    expect(record.node_execute_status?.['k7f3a']?.loop_index).toBe(2);
    expect(record.node_execute_status?.['k7f3a']?.batch_index).toBe(0);
  });
});

describe('nodeOutputSchema', () => {
  it.each([
    ['null', { is_finish: true, node_output: null }],
    ['absent', { is_finish: true }],
  ])('%s node_output is empty', (_label, wire) => {
    expect(nodeOutputSchema.parse(wire).node_output).toBe('');
  });

  it('text kept exactly', () => {
    const text = '第一段。\n{"a":7512345678901234567}\u0000 end ';

    expect(nodeOutputSchema.parse({ is_finish: false, node_output: text })).toEqual({ is_finish: false, node_output: text });
  });

  it('numeric node_output fails', () => {
    expect(nodeOutputSchema.safeParse({ is_finish: true, node_output: 12 }).success).toBe(false);
  });
});

describe('envelopeSchema', () => {
  it('digit-string code becomes a number', () => {
    expect(envelopeSchema.parse({ code: '4009', msg: 'busy' }).code).toBe(4009);
  });

  it('logid in detail kept', () => {
    expect(envelopeSchema.parse({ code: 0, data: [], detail: { logid: 'abc' } }).detail?.logid).toBe('abc');
  });

  it('missing code fails', () => {
    expect(envelopeSchema.safeParse({ msg: 'ok' }).success).toBe(false);
  });
});

describe('nodeExecuteStatusSchema', () => {
  const base = { is_finish: true, node_execute_uuid: 'u-1' };

  it('turns a small numeric node_id into a string', () => {
    const parsed = nodeExecuteStatusSchema.parse({ ...base, node_id: 135201 });

    expect(parsed.node_id).toBe('135201');
  });

  it('rejects a node_id beyond 2^53', () => {
    const result = nodeExecuteStatusSchema.safeParse({ ...base, node_id: 2 ** 53 + 2 });

    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['node_id']);
  });
});
