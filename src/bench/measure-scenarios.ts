import type { BenchSizes, WorkloadShape } from './bench-scenarios.js';
import type { SubjectName } from './child-protocol.js';
import { runOnFakeServer, type RunOptions, type RunSample } from './server-run.js';
import { timeStartup, type StartupSamples } from './startup-timing.js';

/** Every sample of one bench run, one entry per repetition. */
export interface BenchSamples {
  rateBound: { archiver: RunSample[]; sequential: RunSample[]; naive: RunSample[] };
  latencyBound: { archiver: RunSample[]; fetchOnly: RunSample[] };
  bytesBound: { archiver: RunSample[]; baseline: RunSample[] };
  /**
   * `halfBodies` is the archiver on the bytes-bound workload with half the nodes, the
   * `Capped` runs repeat `fewer` and `more` with the young generation capped, and the
   * `Baseline` runs are the undici baseline script on the same two workloads, and the
   * `RunHistory` runs read and plan those two run histories without fetching a node.
   */
  memory: {
    idle: RunSample[];
    fewer: RunSample[];
    more: RunSample[];
    halfBodies: RunSample[];
    fewerCapped: RunSample[];
    moreCapped: RunSample[];
    fewerBaseline: RunSample[];
    moreBaseline: RunSample[];
    fewerRunHistory: RunSample[];
    moreRunHistory: RunSample[];
  };
  startup: StartupSamples;
}

type Progress = (line: string) => void;

/**
 * Node flags that cap V8's young generation at 4 MB per semi-space. Without them it grew to
 * 16 MB per semi-space on this machine's Node 20, and a long run touches every page of it.
 */
export const YOUNG_GENERATION_CAP = ['--max-semi-space-size=4'] as const;

/** Runs of 4 MiB outputs remove their archive as they end (see `runOnFakeServer`). */
const LARGE_FILES: RunOptions = { removeArchive: true };

/**
 * Bytes-bound pairs in each repetition, each an archiver run and a baseline run. A pair
 * takes about 2 s. On the 2-core test machine single pairs in one bench run still ranged from
 * 0.85 to 0.96 in ratio when the median of 9 pairs was 0.899, so each repetition runs 5.
 */
export const BYTES_BOUND_PAIRS = 5;

/**
 * Runs every scenario `repeat` times. Within one repetition the archiver and the programs it
 * is compared with run back to back, so a noisy moment on the machine hits both.
 */
export async function measureScenarios(sizes: BenchSizes, repeat: number, archiveRoot: string, progress: Progress): Promise<BenchSamples> {
  const samples: BenchSamples = {
    rateBound: { archiver: [], sequential: [], naive: [] },
    latencyBound: { archiver: [], fetchOnly: [] },
    bytesBound: { archiver: [], baseline: [] },
    memory: {
      idle: [],
      fewer: [],
      more: [],
      halfBodies: [],
      fewerCapped: [],
      moreCapped: [],
      fewerBaseline: [],
      moreBaseline: [],
      fewerRunHistory: [],
      moreRunHistory: [],
    },
    startup: { help: [], bare: [] },
  };
  const [fewerNodes, moreNodes] = sizes.memoryNodeCounts;

  for (let round = 1; round <= repeat; round += 1) {
    const run = async (label: string, shape: WorkloadShape, subject: SubjectName, options: RunOptions = {}): Promise<RunSample> => {
      const sample = await runOnFakeServer(shape, subject, archiveRoot, options);
      // The run-history subject lists the node runs and fetches none of them.
      const outcome = subject === 'run-history-only' ? `${sample.nodes} node runs listed` : `${sample.saved}/${sample.nodes} saved`;
      progress(`${label} ${round}/${repeat}: ${subject} ${(sample.wallMs / 1000).toFixed(2)} s, ${outcome}`);
      return sample;
    };

    samples.rateBound.archiver.push(await run('rate-bound', sizes.rateBound, 'archiver'));
    samples.rateBound.sequential.push(await run('peers', sizes.rateBound, 'sequential-peer'));
    samples.rateBound.naive.push(await run('peers', sizes.rateBound, 'naive-peer'));
    samples.latencyBound.archiver.push(await run('latency-bound', sizes.latencyBound, 'archiver'));
    samples.latencyBound.fetchOnly.push(await run('latency-bound', sizes.latencyBound, 'undici-fetch-only'));
    // On the test VM the first 4 MiB run after the small-node runs took up to 0.5 s more kernel
    // time, whichever program it was. This run takes that cost, and its sample is dropped.
    await run('bytes-bound warm-up', sizes.bytesBound, 'undici-baseline', LARGE_FILES);
    for (let pair = 0; pair < BYTES_BOUND_PAIRS; pair += 1) {
      const archiverRun = (): Promise<RunSample> => run('bytes-bound', sizes.bytesBound, 'archiver', LARGE_FILES);
      const baselineRun = (): Promise<RunSample> => run('bytes-bound', sizes.bytesBound, 'undici-baseline', LARGE_FILES);
      // The program that ran second had an edge: in 24 pairs the median ratio was 0.831 with the
      // archiver first and 0.864 with it second. So the order alternates, across repetitions too.
      if (((round - 1) * BYTES_BOUND_PAIRS + pair) % 2 === 0) {
        samples.bytesBound.archiver.push(await archiverRun());
        samples.bytesBound.baseline.push(await baselineRun());
      } else {
        const baseline = await baselineRun();
        samples.bytesBound.archiver.push(await archiverRun());
        samples.bytesBound.baseline.push(baseline);
      }
    }
    samples.memory.idle.push(await run('memory', sizes.memorySmall, 'idle'));
    samples.memory.fewer.push(await run('memory', { ...sizes.memorySmall, nodes: fewerNodes }, 'archiver'));
    samples.memory.more.push(await run('memory', { ...sizes.memorySmall, nodes: moreNodes }, 'archiver'));
    const halfBodies = { ...sizes.bytesBound, nodes: Math.ceil(sizes.bytesBound.nodes / 2) };
    samples.memory.halfBodies.push(await run('memory', halfBodies, 'archiver', LARGE_FILES));
    samples.memory.fewerCapped.push(await run('memory', { ...sizes.memorySmall, nodes: fewerNodes }, 'archiver', { nodeFlags: YOUNG_GENERATION_CAP }));
    samples.memory.moreCapped.push(await run('memory', { ...sizes.memorySmall, nodes: moreNodes }, 'archiver', { nodeFlags: YOUNG_GENERATION_CAP }));
    samples.memory.fewerBaseline.push(await run('memory', { ...sizes.memorySmall, nodes: fewerNodes }, 'undici-baseline'));
    samples.memory.moreBaseline.push(await run('memory', { ...sizes.memorySmall, nodes: moreNodes }, 'undici-baseline'));
    samples.memory.fewerRunHistory.push(await run('memory', { ...sizes.memorySmall, nodes: fewerNodes }, 'run-history-only'));
    samples.memory.moreRunHistory.push(await run('memory', { ...sizes.memorySmall, nodes: moreNodes }, 'run-history-only'));
  }

  progress(`start-up: ${sizes.startupRuns} runs each`);
  samples.startup = await timeStartup(sizes.startupRuns);
  return samples;
}
