import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterEach, describe, expect, it } from 'vitest';

import { CLI_PATH, PROJECT_ROOT } from './helpers/run-cli.js';

// Packages that only a command's work needs. Loading them made `--help` about 3.5 times
// slower than starting Node.
const WORK_PACKAGES = ['undici', 'zod', 'pino', 'p-retry', 'p-limit', 'cli-progress'];

const folders: string[] = [];

afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

/**
 * Runs the CLI with a module hook that appends every resolved module URL to a file, and
 * returns the package names among them.
 */
async function packagesLoaded(args: readonly string[]): Promise<{ code: number | null; stdout: string; packages: Set<string> }> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'coze-startup-'));
  folders.push(folder);
  const logFile = path.join(folder, 'modules.log');
  const hooksFile = path.join(folder, 'hooks.mjs');
  const registerFile = path.join(folder, 'register.mjs');

  await writeFile(
    hooksFile,
    `import { appendFileSync } from 'node:fs';\n` +
      `export async function resolve(specifier, context, next) {\n` +
      `  const result = await next(specifier, context);\n` +
      `  appendFileSync(${JSON.stringify(logFile)}, result.url + '\\n');\n` +
      `  return result;\n` +
      `}\n`,
  );
  await writeFile(registerFile, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooksFile).href)});\n`);
  await writeFile(logFile, '');

  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(registerFile).href, CLI_PATH, ...args], { cwd: PROJECT_ROOT });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout: output }));
  });

  const urls = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
  const packages = new Set(urls.map((url) => /\/node_modules\/([^/]+)\//.exec(url)?.[1]).filter((name): name is string => name !== undefined));
  return { code, stdout, packages };
}

describe('CLI start-up', () => {
  it.each([[['--help']], [['fetch', '--help']], [['verify', '--help']], [['export', '--help']]])('%j loads no work package', async (args) => {
    const { code, stdout, packages } = await packagesLoaded(args);

    expect(code).toBe(0);
    expect(stdout).toContain('Usage: coze-node-outputs');
    expect(packages.has('commander')).toBe(true);
    for (const name of WORK_PACKAGES) expect(packages.has(name), name).toBe(false);
  });

  it('fetch --dry-run loads its work packages', async () => {
    const { code, packages } = await packagesLoaded(['fetch', '--dry-run', '--workflow-id', '7350000000000000001', '--execute-id', '7431000000000000001']);

    expect(code).toBe(0);
    expect(packages.has('zod')).toBe(true);
  });
});
