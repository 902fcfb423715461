import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { request, type Dispatcher } from 'undici';

import type { ChildJob, SubjectOutcome } from '../child-protocol.js';

/** A decoded Coze response: the HTTP status and the parsed body. */
export interface PeerResponse {
  status: number;
  json: unknown;
}

/** Sends one GET with the bearer token and parses the body as JSON, as a plain script would. */
export async function getJson(url: string, token: string, dispatcher: Dispatcher): Promise<PeerResponse> {
  const response = await request(url, { method: 'GET', headers: { authorization: `Bearer ${token}` }, dispatcher });
  return { status: response.statusCode, json: await response.body.json() };
}

export function runHistoryUrl(job: ChildJob): string {
  return `${job.baseUrl}/v1/workflows/${job.workflowId}/run_histories/${job.executeId}`;
}

export function nodeUrl(job: ChildJob, nodeExecuteUuid: string): string {
  return `${runHistoryUrl(job)}/execute_nodes/${nodeExecuteUuid}`;
}

/** Reads the run history once and returns every `node_execute_uuid` in `node_execute_status`. */
export async function listNodeUuids(job: ChildJob, dispatcher: Dispatcher): Promise<string[]> {
  const { status, json } = await getJson(runHistoryUrl(job), job.token, dispatcher);
  const envelope = json as { code?: number; data?: { node_execute_status?: Record<string, { node_execute_uuid: string }> }[] };
  const statusMap = envelope.data?.[0]?.node_execute_status;
  if (envelope.code !== 0 || statusMap === undefined) {
    throw new Error(`Run history request failed with HTTP ${status} and code ${envelope.code}; the bench peers do not retry.`);
  }
  return Object.values(statusMap).map((entry) => entry.node_execute_uuid);
}

/** Returns `data.node_output` of a successful execute-node response, or undefined for any error. */
export function nodeOutputOf(response: PeerResponse): string | undefined {
  const envelope = response.json as { code?: number; data?: { node_output?: unknown } };
  const output = envelope.data?.node_output;
  return envelope.code === 0 && typeof output === 'string' ? output : undefined;
}

/** Returns true for an over-limit response: the fake server sends HTTP 429 or code 4020, as Coze may. */
export function isOverLimit(response: PeerResponse): boolean {
  return response.status === 429 || (response.json as { code?: number }).code === 4020;
}

/**
 * Fetches one node result and writes it as `<index>.txt` with no validation, hashing or
 * atomic rename, counting it in `outcome`. An over-limit response is counted and the node lost.
 */
export async function fetchAndSaveNode(job: ChildJob, uuid: string, index: number, dispatcher: Dispatcher, outcome: SubjectOutcome): Promise<void> {
  const response = await getJson(nodeUrl(job, uuid), job.token, dispatcher);
  const output = nodeOutputOf(response);
  if (output === undefined) {
    if (isOverLimit(response)) outcome.overLimitAnswers += 1;
    return;
  }

  const data = Buffer.from(output, 'utf8');
  await writeFile(path.join(job.outDir, `${index}.txt`), data);
  outcome.saved += 1;
  outcome.savedBytes += data.length;
}
