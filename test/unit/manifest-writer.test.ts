import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { ExecutionManifest } from '../../src/archive/manifest.js';
import { ManifestWriter } from '../../src/archive/manifest-writer.js';
import { Cleanups } from '../helpers/cleanups.js';

interface TinyEntry {
  title: string;
  status: 'pending' | 'saved';
}

interface TinyManifest {
  totals: { saved: number };
  nodes: TinyEntry[];
}

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('ManifestWriter', () => {
  it('writes one consistent snapshot', async () => {
    const folder = await cleanups.folder('coze-manifest-writer-');
    const file = path.join(folder, 'manifest.json');
    // 20,000 entries make a text of many 64 KiB pieces.
    const manifest: TinyManifest = {
      totals: { saved: 0 },
      nodes: Array.from({ length: 20_000 }, (_, index) => ({ title: `章节${index}`, status: 'pending' })),
    };
    const snapshot = (): ExecutionManifest => {
      manifest.totals = { saved: manifest.nodes.filter((entry) => entry.status === 'saved').length };
      return manifest as unknown as ExecutionManifest;
    };
    const writer = new ManifestWriter(file, snapshot, 0);

    // Another task saves one entry on every turn of the event loop, as workers do during a run.
    let saved = 0;
    const saveNext = (): void => {
      if (saved >= manifest.nodes.length) return;
      manifest.nodes[saved]!.status = 'saved';
      saved += 1;
      setImmediate(saveNext);
    };
    setImmediate(saveNext);

    let writesWhileSaving = 0;
    for (let write = 0; write < 5; write += 1) {
      const savedBefore = saved;
      await writer.flush();
      if (saved > savedBefore) writesWhileSaving += 1;

      const written = JSON.parse(await readFile(file, 'utf8')) as TinyManifest;
      const savedEntries = written.nodes.filter((entry) => entry.status === 'saved').length;
      expect(written.totals.saved).toBe(savedEntries);
    }
    // Without a write that overlapped the saving, the checks above would prove nothing.
    expect(writesWhileSaving).toBeGreaterThan(0);
  });
});
