import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';

import { afterEach, describe, expect, it } from 'vitest';

// The CLI is tested as shipped, from the compiled output that `npm test` builds first.
const CLI = 'dist/fake-server/cli.js';

const children: ChildProcessWithoutNullStreams[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }
});

function runCli(args: string[]): ChildProcessWithoutNullStreams {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: run \`npm run build\` before this test`);
  }
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'pipe' });
  children.push(child);
  return child;
}

async function readListeningUrl(child: ChildProcessWithoutNullStreams): Promise<string> {
  let output = '';
  for await (const chunk of child.stdout) {
    output += String(chunk);
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(output);
    if (match?.[1] !== undefined) {
      return match[1];
    }
  }
  throw new Error(`CLI exited without a listening line; stdout was: ${output}`);
}

describe('fake server CLI', () => {
  it('serves a scenario and stops on SIGTERM', async () => {
    const child = runCli(['--scenario', 'fixtures/demo.json', '--port', '0', '--token', 'pat_cli']);
    const url = await readListeningUrl(child);

    const response = await fetch(`${url}/v1/workflows/7350000000000000001/run_histories/7431826405913470001`, {
      headers: { authorization: 'Bearer pat_cli' },
    });
    const body = (await response.json()) as { code: number; data: { execute_id: string }[] };

    expect(response.status).toBe(200);
    expect(body.code).toBe(0);
    expect(body.data[0]?.execute_id).toBe('7431826405913470001');

    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.kill('SIGTERM');
    // 'close' waits for stderr to end, where 'exit' may come first.
    const [code] = await once(child, 'close');
    expect(code).toBe(0);
    expect(stderr).toBe('served 1 request: 1 run_history, 0 execute_node, 0 over-limit\n');
  });

  it('exits 2 without --scenario', async () => {
    const child = runCli(['--port', '0']);
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += String(chunk);
    });

    const [code] = await once(child, 'exit');

    expect(code).toBe(2);
    expect(stderr).toContain('missing --scenario');
    expect(stderr).toContain('Usage: node dist/fake-server/cli.js');
  });
});
