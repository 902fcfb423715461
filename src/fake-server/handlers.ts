import { errorResponse, jsonResponse, type PreparedResponse } from './response.js';
import type { ExecutionModel } from './execution-model.js';
import type { RouteMatch } from './routes.js';
import type { ParsedScenario } from './scenario.js';

/** Settings and state the route handlers read to build a normal response. */
export interface HandlerContext {
  token: string;
  auth: ParsedScenario['auth'];
  jsonEscapes: ParsedScenario['jsonEscapes'];
  executions: Map<string, ExecutionModel>;
  now: () => number;
}

/** Builds the response a well-behaved Coze server would send, before any fault is applied. */
export function buildResponse(
  match: RouteMatch,
  authorization: string | undefined,
  logid: string,
  context: HandlerContext,
): PreparedResponse {
  if (match.route === 'unknown') {
    return errorResponse(404, 4000, logid, `no such API: ${match.path}`);
  }

  const denied = checkAuth(match, authorization, logid, context);
  if (denied !== undefined) {
    return denied;
  }

  const execution = context.executions.get(executionKey(match.workflowId ?? '', match.executeId ?? ''));
  if (execution === undefined) {
    return errorResponse(200, 4314, logid);
  }

  const response =
    match.route === 'run_history'
      ? buildRunHistoryResponse(execution, logid, context.now())
      : buildExecuteNodeResponse(execution, match.nodeExecuteUuid ?? '', logid, context.now());
  return context.jsonEscapes === 'ascii' ? { ...response, body: escapeToAscii(response.body) } : response;
}

/**
 * Rewrites JSON text with every non-ASCII character and `<`, `>`, `&` as `\uXXXX`. Those
 * characters can only occur inside strings, so the result is the same JSON value. Characters
 * outside the Basic Multilingual Plane become two escapes, a surrogate pair.
 */
export function escapeToAscii(json: Buffer): Buffer {
  const text = json.toString('utf8').replace(/[^\x00-\x7f]|[<>&]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text, 'utf8');
}

/** Returns the execution key used by the handler map. */
export function executionKey(workflowId: string, executeId: string): string {
  return `${workflowId}/${executeId}`;
}

function checkAuth(
  match: RouteMatch,
  authorization: string | undefined,
  logid: string,
  context: HandlerContext,
): PreparedResponse | undefined {
  const token = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  if (token !== context.token) {
    return errorResponse(401, context.auth.invalidTokenCode, logid);
  }
  if (match.workflowId !== undefined && context.auth.forbiddenWorkflowIds.includes(match.workflowId)) {
    return errorResponse(context.auth.forbiddenStatus, 4101, logid);
  }
  return undefined;
}

function buildRunHistoryResponse(execution: ExecutionModel, logid: string, nowMs: number): PreparedResponse {
  const phase = execution.phaseForPoll(nowMs);
  if (phase === 'notFound') {
    return errorResponse(200, 4314, logid);
  }
  // Run history sends `msg: ""` on success and the execute-node endpoint "Success", as recorded from Coze.
  return jsonResponse(200, 0, '', execution.dataText(phase, nowMs), logid);
}

function buildExecuteNodeResponse(execution: ExecutionModel, uuid: string, logid: string, nowMs: number): PreparedResponse {
  const phase = execution.phaseForNode(nowMs);
  if (phase === 'notFound') {
    return errorResponse(200, 4314, logid);
  }

  // Expiry is checked first so that an expired 4 MB node is never generated.
  if (phase === 'final' && execution.hasNode(uuid) && execution.isExpired(nowMs)) {
    return buildExpiredResponse(execution, logid);
  }

  const result = execution.nodeResult(uuid, phase);
  if (result === undefined) {
    return errorResponse(200, 4200, logid, `node execution ${uuid} not found`);
  }

  const dataText = JSON.stringify({ is_finish: result.isFinish, node_output: result.nodeOutput });
  return jsonResponse(200, 0, 'Success', dataText, logid);
}

// NOTE: Coze does not document what an expired output node returns, so the
// scenario picks one of three plausible responses.
function buildExpiredResponse(execution: ExecutionModel, logid: string): PreparedResponse {
  switch (execution.expiry.answer) {
    case 'code4200':
      return errorResponse(200, 4200, logid);
    case 'code4314':
      return errorResponse(200, 4314, logid);
    case 'emptyOutput':
      return jsonResponse(200, 0, 'Success', '{"is_finish":true,"node_output":""}', logid);
  }
}
