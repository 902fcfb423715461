import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const CLI_SCRIPT = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Wall times, in ms, from spawn to exit of `--help` and of an empty Node program. */
export interface StartupSamples {
  help: number[];
  bare: number[];
}

/** Times `node dist/cli/main.js --help` against `node -e ''`, alternating so noise hits both alike. */
export async function timeStartup(runs: number): Promise<StartupSamples> {
  const samples: StartupSamples = { help: [], bare: [] };
  for (let run = 0; run < runs; run += 1) {
    samples.help.push(await timeProcess([CLI_SCRIPT, '--help']));
    samples.bare.push(await timeProcess(['-e', '']));
  }
  return samples;
}

function timeProcess(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`node ${args.join(' ')} exited with code ${code}.`));
        return;
      }
      resolve(performance.now() - started);
    });
  });
}
