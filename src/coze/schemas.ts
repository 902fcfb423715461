import { z } from 'zod';

/**
 * Validates an id that Coze sends as a digit string of about 19 digits, larger than 2^53.
 * A number is accepted only while it is still exact. Past 2^53 its digits are already
 * lost in JSON.parse, so the value is rejected and the issue path names the field.
 */
export const cozeId = z.union([z.string().min(1), z.number()]).transform((value, context) => {
  if (typeof value === 'string') return value;

  if (!Number.isInteger(value)) {
    context.addIssue({ code: 'custom', message: `numeric id ${value} is not a whole number` });
    return z.NEVER;
  }
  if (!Number.isSafeInteger(value)) {
    context.addIssue({
      code: 'custom',
      message: `numeric id ${value} is beyond 2^53 and has lost digits; Coze must send it as a string`,
    });
    return z.NEVER;
  }
  return String(value);
});

/** Coze sends `error_code` as a string, `""` when fine; older servers sent numbers. */
const errorCode = z
  .union([z.string(), z.number(), z.null()])
  .optional()
  .transform((value) => (value === null || value === undefined ? '' : String(value)));

/** Seconds since the epoch; tolerated as a digit string too. */
const unixSeconds = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

export const nodeExecuteStatusSchema = z.looseObject({
  node_id: cozeId,
  is_finish: z.boolean(),
  update_time: unixSeconds.optional(),
  node_execute_uuid: z.string().min(1),
  loop_index: z.number().int().nonnegative().optional(),
  batch_index: z.number().int().nonnegative().optional(),
  sub_execute_id: cozeId.optional(),
});
export type NodeExecuteStatus = z.infer<typeof nodeExecuteStatusSchema>;

/**
 * `node_execute_status`, checked in place. A record schema copied every entry in one
 * synchronous pass, and for 20,000 node runs those copies outlived young-generation
 * collections: reading such a run history peaked at 125 to 141 MiB, against 122 to 126 MiB
 * with each entry checked where `JSON.parse` left it. An entry that the plain check below
 * does not pass goes through `nodeExecuteStatusSchema`, so zod reports a bad field with its
 * path.
 */
const nodeExecuteStatusMap = z.unknown().transform((value, context): Record<string, NodeExecuteStatus> | null | undefined => {
  if (value === undefined || value === null) return value;
  if (!isPlainRecord(value)) {
    context.addIssue({ code: 'custom', message: 'expected an object of node runs' });
    return z.NEVER;
  }

  for (const key of Object.keys(value)) {
    if (normalizeInPlace(value[key])) continue;
    const result = nodeExecuteStatusSchema.safeParse(value[key]);
    if (result.success) {
      value[key] = result.data;
      continue;
    }
    for (const issue of result.error.issues) {
      context.addIssue({ code: 'custom', message: issue.message, path: [key, ...issue.path] });
    }
  }
  return value as Record<string, NodeExecuteStatus>;
});

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Returns true when `nodeExecuteStatusSchema` would accept `entry`, after making the same
 * changes to it that the schema makes to its copy. False leaves the verdict to the schema.
 */
function normalizeInPlace(entry: unknown): boolean {
  if (!isPlainRecord(entry)) return false;
  const { node_id, is_finish, update_time, node_execute_uuid, loop_index, batch_index, sub_execute_id } = entry;

  if (!isId(node_id) || typeof is_finish !== 'boolean') return false;
  if (typeof node_execute_uuid !== 'string' || node_execute_uuid.length === 0) return false;
  if (!isOptionalIndex(loop_index) || !isOptionalIndex(batch_index)) return false;
  if (sub_execute_id !== undefined && !isId(sub_execute_id)) return false;
  if (update_time !== undefined && typeof update_time !== 'number' && !(typeof update_time === 'string' && /^\d+$/.test(update_time))) {
    return false;
  }

  if (typeof node_id === 'number') entry['node_id'] = String(node_id);
  if (typeof sub_execute_id === 'number') entry['sub_execute_id'] = String(sub_execute_id);
  if (typeof update_time === 'string') entry['update_time'] = Number(update_time);
  return true;
}

function isId(value: unknown): boolean {
  return (typeof value === 'string' && value.length > 0) || Number.isSafeInteger(value);
}

function isOptionalIndex(value: unknown): boolean {
  return value === undefined || (Number.isSafeInteger(value) && (value as number) >= 0);
}

/** One run-history record. Unknown keys are kept; unknown `execute_status` values too. */
export const runHistoryRecordSchema = z.looseObject({
  execute_id: cozeId,
  execute_status: z.string(),
  bot_id: cozeId.optional(),
  connector_id: cozeId.optional(),
  connector_uid: z.string().optional(),
  run_mode: z.number().int().optional(),
  create_time: unixSeconds.optional(),
  update_time: unixSeconds.optional(),
  output: z.string().nullable().optional(),
  node_execute_status: nodeExecuteStatusMap.optional(),
  error_code: errorCode,
  error_message: z.string().nullable().optional(),
  debug_url: z.string().optional(),
  is_output_trimmed: z.boolean().optional(),
  logid: z.string().optional(),
});
export type RunHistoryRecord = z.infer<typeof runHistoryRecordSchema>;

/** The envelope shared by both endpoints: `{code, msg, data, detail: {logid}}`. */
export const envelopeSchema = z.looseObject({
  code: z.union([z.number().int(), z.string().regex(/^-?\d+$/).transform(Number)]),
  msg: z.string().nullable().optional(),
  data: z.unknown().optional(),
  detail: z.looseObject({ logid: z.string().optional() }).nullable().optional(),
});
export type Envelope = z.infer<typeof envelopeSchema>;

export const runHistoryDataSchema = z.array(runHistoryRecordSchema).min(1);

/**
 * The output-node result. An expired node may come back with code 0 and no output, so a
 * missing or null `node_output` reads as empty and the caller decides what empty means.
 */
export const nodeOutputSchema = z.looseObject({
  is_finish: z.boolean().optional(),
  node_output: z
    .string()
    .nullable()
    .optional()
    .transform((value) => value ?? ''),
});
export type NodeOutput = z.infer<typeof nodeOutputSchema>;

/** Formats zod issues as `path: message` pairs for an error that names the field. */
export function describeIssues(error: z.ZodError, prefix: string): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => describeIssue(issue, [prefix, ...issue.path]))
    .join('; ');
}

/** Formats one zod issue as `path: message`, the path joined with dots. */
export function describeIssue(issue: z.core.$ZodIssue, path: readonly PropertyKey[]): string {
  return `${path.map(String).join('.')}: ${issueMessage(issue)}`;
}

/**
 * Returns zod's message for a field of the wrong type without its "Invalid input: " lead, and
 * "missing" in place of "received undefined": JSON has no undefined, so that value can only
 * be a field the body lacks. The message is matched, not the issue code, because the
 * in-place check of node runs passes on the message alone.
 */
function issueMessage(issue: z.core.$ZodIssue): string {
  const wrongType = /^Invalid input: expected (.+), received (.+)$/.exec(issue.message);
  if (wrongType === null) return issue.message;
  return wrongType[2] === 'undefined' ? `missing, expected ${wrongType[1]}` : `expected ${wrongType[1]}, received ${wrongType[2]}`;
}
