import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import { archiveExecutionOutputs } from '../src/index.js';
import type { Scenario } from '../src/fake-server/index.js';
import { Cleanups } from './helpers/cleanups.js';
import { EXECUTE_ID, executionScenario, nodeUuid, TOKEN, WORKFLOW_ID } from './helpers/scenarios.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Texts with every kind of character the escapes rewrite: Chinese, an emoji, and `<`, `>`, `&`. */
const SMALL_TEXT = '第一段 <b>粗体</b> & 😀\n"引号"\t结束';
/** About 2 MiB of output with a \u escape for nearly every character: past the size that streams to a file. */
const LARGE_TEXT = '长文本中的每个汉字都会被写成六个字节的转义序列。<p>&amp;</p>😀\n'.repeat(25_000);

function scenarioWith(jsonEscapes: 'raw' | 'ascii'): Scenario {
  return executionScenario(2, { jsonEscapes }, (index) => ({ text: index === 1 ? SMALL_TEXT : LARGE_TEXT }));
}

async function archive(scenario: Scenario) {
  const server = await cleanups.server(scenario);
  const outDir = await cleanups.folder('coze-escapes-');
  const manifest = await archiveExecutionOutputs({ token: TOKEN, baseUrl: server.url, outDir, workflowId: WORKFLOW_ID, executeId: EXECUTE_ID });
  // A second read of the run history gives the same body apart from the logid, which differs per response.
  const served = await request(`${server.url}/v1/workflows/${WORKFLOW_ID}/run_histories/${EXECUTE_ID}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const servedLogid = String(served.headers['x-tt-logid']);
  const servedText = Buffer.from(await served.body.arrayBuffer()).toString('latin1');
  const servedHistory = Buffer.from(servedText.replace(servedLogid, manifest.run_history_logid ?? ''), 'latin1');
  return { manifest, folder: path.join(outDir, WORKFLOW_ID, EXECUTE_ID), servedHistory };
}

describe.each(['raw', 'ascii'] as const)('JSON with %s characters', (jsonEscapes) => {
  it('saves the same bytes', async () => {
    const { manifest, folder, servedHistory } = await archive(scenarioWith(jsonEscapes));

    for (const [index, text] of [[1, SMALL_TEXT], [2, LARGE_TEXT]] as const) {
      const entry = manifest.nodes.find((node) => node.node_execute_uuid === nodeUuid(index))!;
      const expected = Buffer.from(text, 'utf8');
      const saved = await readFile(path.join(folder, entry.file!));

      expect(saved.equals(expected), `node ${index}`).toBe(true);
      expect(entry.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
    }
    expect(Buffer.byteLength(LARGE_TEXT)).toBeGreaterThan(1024 * 1024);
    // execution.json is the response body as sent, escapes included.
    expect((await readFile(path.join(folder, 'execution.json'))).equals(servedHistory)).toBe(true);
    // The node keys are 节点1 and 节点2.
    expect(servedHistory.includes('\\u8282')).toBe(jsonEscapes === 'ascii');
  });
});
