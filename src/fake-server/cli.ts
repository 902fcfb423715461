#!/usr/bin/env node
import { parseArgs } from 'node:util';

import { startFakeCozeServer } from './server.js';
import type { FakeCozeServerOptions } from './types.js';

const USAGE = `Usage: node dist/fake-server/cli.js --scenario FILE [--port N] [--token T] [--latency-ms MS] [--qps N]

Serves a Coze-compatible API on 127.0.0.1 from a scenario file, for tests and demos.

  --scenario FILE   JSON scenario file (required), see fixtures/README.md
  --port N          TCP port on 127.0.0.1; 0 picks a free one (default 0)
  --token T         accepted API token, replacing the scenario's
  --latency-ms MS   delay before every response, in milliseconds
  --qps N           server-side rate limit in requests per second (HTTP 429 above it)`;

/** Parses the command line into server options. Throws with the usage text on a bad flag. */
function parseCliOptions(argv: string[]): FakeCozeServerOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      port: { type: 'string', default: '0' },
      token: { type: 'string' },
      'latency-ms': { type: 'string' },
      qps: { type: 'string' },
    },
    strict: true,
  });

  if (values.scenario === undefined) {
    throw new Error(`missing --scenario\n\n${USAGE}`);
  }

  const options: FakeCozeServerOptions = { scenario: values.scenario, port: parseCount('--port', values.port) };
  if (values.token !== undefined) options.token = values.token;
  if (values['latency-ms'] !== undefined) options.latencyMs = parseCount('--latency-ms', values['latency-ms']);
  if (values.qps !== undefined) options.rateLimit = { qps: parseCount('--qps', values.qps) };
  return options;
}

function parseCount(flag: string, value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) {
    throw new Error(`invalid ${flag} ${JSON.stringify(value)}: expected a whole number\n\n${USAGE}`);
  }
  return number;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  let options: FakeCozeServerOptions;
  try {
    options = parseCliOptions(args);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }

  const server = await startFakeCozeServer(options);
  process.stdout.write(`listening on ${server.url}\n`);

  // Closing destroys every socket and timer, so the process then exits on its own. The counts
  // let a user check what a client reports against what the server saw.
  const stop = (): void => {
    const served = server.requests.length;
    const count = (route: 'run_history' | 'execute_node'): number => server.countRequests({ route });
    process.stderr.write(
      `served ${served} ${served === 1 ? 'request' : 'requests'}: ${count('run_history')} run_history, ` +
        `${count('execute_node')} execute_node, ${server.overLimitCount()} over-limit\n`,
    );
    void server.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`fake Coze server failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
