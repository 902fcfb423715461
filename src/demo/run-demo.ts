import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { archiveExecution } from '../archive/archive-execution.js';
import { createRun } from '../archive/create-run.js';
import type { ExecutionManifest } from '../archive/manifest.js';
import { textSummary } from '../cli/summary.js';
import { exitCodeFor } from '../exit-codes.js';
import { loadScenario, startFakeCozeServer } from '../fake-server/index.js';
import { createLogger } from '../logger.js';

/**
 * `npm run demo`: starts the bundled fake Coze server on 127.0.0.1, archives every execution
 * of fixtures/demo.json into ./demo-archive, prints what was saved and flagged, and stops.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const scenarioPath = path.join(root, 'fixtures', 'demo.json');
const outDir = path.resolve(process.argv[2] ?? 'demo-archive');

const scenario = loadScenario(scenarioPath);
const token = scenario.token ?? 'pat_demo_token';
const server = await startFakeCozeServer({ scenario });
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'error', pretty: process.stderr.isTTY === true });

process.stderr.write(`Fake Coze server listening on ${server.url}\n`);
const run = createRun({ token, baseUrl: server.url, outDir, qps: 50, concurrency: 8, retryMinDelayMs: 50, logger });
const manifests: ExecutionManifest[] = [];

try {
  for (const execution of scenario.executions ?? []) {
    manifests.push(await archiveExecution(run.context, { workflowId: execution.workflowId, executeId: execution.executeId }));
  }
} finally {
  await run.close();
  await server.close();
}

process.stdout.write(textSummary(manifests, outDir));
process.stdout.write(
  `\nArchived ${manifests.length} executions to ${outDir} with ${server.requests.length} requests to the fake server.\n` +
    `The CLI would exit with code ${exitCodeFor(manifests)} for these executions (see "Exit codes" in README.md, 退出码 in README.zh-CN.md).\n` +
    'Open any manifest.json beside the files to see every field.\n',
);
