import type { Logger } from 'pino';

/** The process streams, environment and signal a command uses, passed in so tests can run commands in-process. */
export interface CliEnvironment {
  env: NodeJS.ProcessEnv;
  /** Read by `fetch --from -`. */
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /**
   * Creates the run's logger once the command has parsed `--log-level`, so pino loads only
   * then. `destination` receives the lines in place of stderr, such as a progress bar's stream.
   */
  makeLogger(level: string, destination?: NodeJS.WritableStream): Promise<Logger>;
  signal: AbortSignal;
  /** 130 after SIGINT, 143 after SIGTERM. */
  interruptExitCode(): number;
  exitCode: number;
  /** Set once a command has written its `--json` document, so that an error after it adds no second one. */
  jsonWritten?: boolean;
}
