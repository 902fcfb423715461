import { readFileSync } from 'node:fs';
import { z } from 'zod';

// A scenario file describes what the fake server stores and how it misbehaves.
// Wire fields (`record`) stay in Coze's snake_case and pass through verbatim;
// everything else is a camelCase control that the server turns into wire data.

const routeSchema = z.enum(['run_history', 'execute_node', 'any']);

const digitString = z.string().regex(/^\d+$/, 'expected a string of digits');

const generateSchema = z
  .strictObject({
    text: z.enum(['chinese', 'ascii']).default('chinese'),
    chars: z.int().nonnegative().optional(),
    bytes: z.int().nonnegative().optional(),
    seed: z.string().optional(),
  })
  .refine((spec) => (spec.chars === undefined) !== (spec.bytes === undefined), {
    message: 'set exactly one of `chars` or `bytes`',
  });

const nodeSchema = z
  .strictObject({
    key: z.string().min(1),
    nodeId: z.string().min(1),
    nodeExecuteUuid: z.string().min(1),
    isFinish: z.boolean().default(true),
    updateTime: z.int().optional(),
    loopIndex: z.int().nonnegative().optional(),
    batchIndex: z.int().nonnegative().optional(),
    subExecuteId: digitString.optional(),
    extra: z.record(z.string(), z.unknown()).optional(),
    text: z.string().optional(),
    json: z.unknown().optional(),
    generate: generateSchema.optional(),
    resultIsFinish: z.boolean().optional(),
    whileRunning: z.enum(['absent', 'unfinished', 'finished']).default('absent'),
  })
  .refine((node) => countOutputSources(node) <= 1, {
    message: 'set at most one of `text`, `json` or `generate`',
  });

const generatedNodesSchema = z
  .strictObject({
    count: z.int().min(1),
    chars: z.int().nonnegative().optional(),
    bytes: z.int().nonnegative().optional(),
    text: z.enum(['chinese', 'ascii']).default('chinese'),
    titlePrefix: z.string().min(1).default('输出'),
    repeatsPerTitle: z.int().min(1).default(3),
    repeatKind: z.enum(['loop', 'batch']).default('loop'),
    firstNodeId: z.int().min(1).default(100001),
  })
  .refine((spec) => (spec.chars === undefined) !== (spec.bytes === undefined), {
    message: 'set exactly one of `chars` or `bytes`',
  });

const timelineSchema = z
  .strictObject({
    notFoundPolls: z.int().nonnegative().default(0),
    finishAfterPolls: z.int().nonnegative().optional(),
    finishAfterMs: z.int().nonnegative().optional(),
    runningOutput: z.string().default('{"node_status":"{}"}'),
  })
  .refine((t) => t.finishAfterPolls !== undefined || t.finishAfterMs !== undefined, {
    message: 'set `finishAfterPolls`, `finishAfterMs` or both',
  });

const expiryAnswerSchema = z.enum(['code4200', 'code4314', 'emptyOutput']);

const expirySchema = z.strictObject({
  // Coze keeps output-node results for 24 hours.
  afterSeconds: z.int().nonnegative().default(86_400),
  answer: expiryAnswerSchema.default('code4200'),
});

const recordSchema = z.looseObject({
  execute_status: z.string().optional(),
  output: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
});

const executionSchema = z.strictObject({
  workflowId: digitString,
  executeId: digitString,
  startedSecondsAgo: z.int().nonnegative().default(600),
  durationSeconds: z.int().nonnegative().default(12),
  record: recordSchema.default({}),
  nodes: z.array(nodeSchema).default([]),
  generatedNodes: generatedNodesSchema.optional(),
  inlineNodes: z.array(z.string()).default([]),
  nodeExecuteStatus: z.enum(['fromNodes', 'empty', 'absent']).default('fromNodes'),
  timeline: timelineSchema.optional(),
  expiry: expirySchema.partial().optional(),
});

const fraction = z.number().gt(0).lt(1).default(0.5);

const actionSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('status'),
    status: z.int().min(100).max(599),
    code: z.int(),
    msg: z.string().optional(),
    retryAfter: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('html'),
    status: z.int().min(100).max(599).default(502),
    body: z.string().optional(),
    logidHeader: z.boolean().default(true),
  }),
  z.strictObject({
    type: z.literal('invalidJson'),
    status: z.int().min(200).max(299).default(200),
    body: z.string().default('upstream response: ok'),
  }),
  z.strictObject({ type: z.literal('truncatedJson'), fraction }),
  z.strictObject({ type: z.literal('resetBeforeHeaders') }),
  z.strictObject({ type: z.literal('resetMidBody'), fraction }),
  z.strictObject({ type: z.literal('stallBeforeHeaders'), ms: z.int().nonnegative().optional() }),
  z.strictObject({
    type: z.literal('stallMidBody'),
    fraction,
    ms: z.int().nonnegative().optional(),
  }),
  z.strictObject({
    type: z.literal('slowBody'),
    chunkBytes: z.int().min(1).default(1024),
    delayMs: z.int().nonnegative().default(50),
  }),
  z.strictObject({
    type: z.literal('echoHeaders'),
    status: z.int().min(100).max(599).default(400),
    code: z.int().default(4000),
  }),
  z.strictObject({ type: z.literal('oversized'), bytes: z.int().min(1024) }),
]);

const faultRuleSchema = z.strictObject({
  name: z.string().min(1).optional(),
  route: routeSchema.default('any'),
  requests: z.array(z.int().min(1)).min(1).optional(),
  workflowId: z.string().optional(),
  executeId: z.string().optional(),
  nodeExecuteUuid: z.string().optional(),
  times: z.int().min(1).optional(),
  action: actionSchema,
});

const latencySchema = z.union([
  z.int().nonnegative(),
  z.strictObject({
    run_history: z.int().nonnegative().optional(),
    execute_node: z.int().nonnegative().optional(),
    other: z.int().nonnegative().optional(),
  }),
]);

const rateLimitSchema = z.strictObject({
  qps: z.int().min(1),
  answer: z.enum(['http429', 'code4020']).default('http429'),
});

const authSchema = z.strictObject({
  invalidTokenCode: z.union([z.literal(4100), z.literal(700012006)]).default(4100),
  forbiddenWorkflowIds: z.array(z.string()).default([]),
  // NOTE: Coze documents no HTTP status for 4101, so 401 (as for 4100) is a guess.
  forbiddenStatus: z.int().min(100).max(599).default(401),
});

export const scenarioSchema = z
  .strictObject({
    description: z.string().optional(),
    token: z.string().min(1).default('pat_demo_token'),
    auth: authSchema.default({ invalidTokenCode: 4100, forbiddenWorkflowIds: [], forbiddenStatus: 401 }),
    latencyMs: latencySchema.default(0),
    rateLimit: rateLimitSchema.nullable().default(null),
    /**
     * Character encoding of the JSON in run-history and execute-node responses: `raw` sends
     * characters as UTF-8, and `ascii` writes every non-ASCII character and `<`, `>`, `&` as
     * `\uXXXX` escapes, as some JSON encoders do. Both are valid JSON, and a client must read
     * both the same.
     */
    jsonEscapes: z.enum(['raw', 'ascii']).default('raw'),
    expiry: expirySchema.default({ afterSeconds: 86_400, answer: 'code4200' }),
    executions: z.array(executionSchema).default([]),
    faults: z.array(faultRuleSchema).default([]),
  })
  .superRefine(checkIdsAndKeys);

/** A scenario as written in a file or a test, before defaults are filled in. */
export type Scenario = z.input<typeof scenarioSchema>;
export type ParsedScenario = z.output<typeof scenarioSchema>;
export type ScenarioExecution = z.output<typeof executionSchema>;
export type ScenarioNode = z.output<typeof nodeSchema>;
export type GeneratedNodesSpec = z.output<typeof generatedNodesSchema>;
export type GenerateSpec = z.output<typeof generateSchema>;
export type FaultRule = z.output<typeof faultRuleSchema>;
export type FaultAction = z.output<typeof actionSchema>;
export type FaultRoute = z.output<typeof routeSchema>;
export type LatencySetting = z.output<typeof latencySchema>;
export type RateLimitSetting = z.output<typeof rateLimitSchema>;
export type ExpirySetting = z.output<typeof expirySchema>;
export type ExpiryAnswer = z.output<typeof expiryAnswerSchema>;

/**
 * Validates a scenario object and fills in defaults.
 * Throws an Error that names `source` and lists every invalid field.
 */
export function parseScenario(value: unknown, source = 'scenario'): ParsedScenario {
  const result = scenarioSchema.safeParse(value);
  if (!result.success) {
    throw new Error(`invalid scenario ${source}:\n${z.prettifyError(result.error)}`);
  }
  return result.data;
}

/** Reads and validates a JSON scenario file. */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read scenario file ${path}: ${(error as Error).message}`, { cause: error });
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`scenario file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }

  return parseScenario(value, path);
}

function countOutputSources(node: { text?: unknown; json?: unknown; generate?: unknown }): number {
  let count = 0;
  if (node.text !== undefined) count += 1;
  if (node.json !== undefined) count += 1;
  if (node.generate !== undefined) count += 1;
  return count;
}

// The server finds executions by (workflow, execute id) and nodes by uuid, so
// both must be unique. Map keys must be unique too, because a JSON object keeps
// one value per key, and each inline node must name one of them.
function checkIdsAndKeys(scenario: { executions: ScenarioExecution[] }, context: z.RefinementCtx): void {
  const executionIds = new Set<string>();

  scenario.executions.forEach((execution, index) => {
    const id = `${execution.workflowId}/${execution.executeId}`;
    if (executionIds.has(id)) {
      context.addIssue({ code: 'custom', message: `duplicate execution ${id}`, path: ['executions', index] });
    }
    executionIds.add(id);

    const uuids = new Set<string>();
    const keys = new Set<string>();
    execution.nodes.forEach((node, nodeIndex) => {
      const path = ['executions', index, 'nodes', nodeIndex];
      if (uuids.has(node.nodeExecuteUuid)) {
        context.addIssue({ code: 'custom', message: `duplicate nodeExecuteUuid ${node.nodeExecuteUuid}`, path });
      }
      if (keys.has(node.key)) {
        context.addIssue({ code: 'custom', message: `duplicate node key ${node.key}`, path });
      }
      uuids.add(node.nodeExecuteUuid);
      keys.add(node.key);
    });

    execution.inlineNodes.forEach((key, keyIndex) => {
      if (!keys.has(key)) {
        const path = ['executions', index, 'inlineNodes', keyIndex];
        context.addIssue({ code: 'custom', message: `inline node ${key} is not the key of a listed node`, path });
      }
    });
  });
}
