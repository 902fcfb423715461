import { Command } from 'commander';

import { TOOL_VERSION } from '../version.js';
import type { CliEnvironment } from './cli-environment.js';
import { exportCommand } from './export-command.js';
import { fetchCommand } from './fetch-command.js';
import { verifyCommand } from './verify-command.js';

/** Declares the command line. Commands are modules of their own; this file only lists them. */
export function buildProgram(environment: CliEnvironment): Command {
  const program = new Command('coze-node-outputs')
    .description('Archive every output-node result (输出节点) of Coze workflow executions before Coze deletes them.')
    .version(TOOL_VERSION)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => environment.stdout.write(text),
      writeErr: (text) => environment.stderr.write(text),
    });

  // Commands added this way do not inherit the program's settings, so each gets its own.
  for (const command of [fetchCommand(environment), verifyCommand(environment), exportCommand(environment)]) {
    program.addCommand(command.exitOverride().showHelpAfterError(`(run coze-node-outputs ${command.name()} --help for every option)`));
  }
  return program;
}
