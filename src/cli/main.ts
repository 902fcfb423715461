#!/usr/bin/env node
import process from 'node:process';

import { removePendingTemporaryFilesSync } from '../archive/atomic-write.js';
import { EXIT_CODES } from '../exit-codes.js';
import { limitHeapGrowth } from '../heap-growth.js';
import type { CliEnvironment } from './cli-environment.js';
import { runCli } from './run-cli.js';

const controller = new AbortController();
let interruptCode: number = EXIT_CODES.sigint;

/**
 * Stops the run on the first SIGINT or SIGTERM: no new requests, those in flight aborted,
 * the manifest written. A second signal exits at once.
 */
function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  const code = signal === 'SIGINT' ? EXIT_CODES.sigint : EXIT_CODES.sigterm;
  if (controller.signal.aborted) {
    process.stderr.write(`\n${signal} again: exiting now.\n`);
    removePendingTemporaryFilesSync();
    process.exit(code);
  }

  interruptCode = code;
  const again = signal === 'SIGINT' ? 'Press Ctrl+C again' : 'Send SIGTERM again';
  process.stderr.write(`\n${signal}: stopping; writing the manifest. ${again} to exit at once.\n`);
  controller.abort(new Error(`interrupted by ${signal}`));
}

process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

// A reader that stops early, as in `coze-node-outputs fetch --help | head -5`, is not a fault of
// the command. Without a listener the EPIPE would end the process with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

const environment: CliEnvironment = {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
  exitCode: EXIT_CODES.ok,
  interruptExitCode: () => interruptCode,
  makeLogger: async (level, destination) => {
    const { createLogger } = await import('../logger.js');
    return createLogger({ level, pretty: process.stderr.isTTY === true, prettyDestination: destination });
  },
};

// The CLI owns its process, so it keeps memory flat on large executions (see heap-growth.ts).
limitHeapGrowth();

const exitCode = await runCli(process.argv.slice(2), environment);
process.exitCode = exitCode;
