import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startFakeCozeServer, type FakeCozeServer, type Scenario } from '../src/fake-server/index.js';
import { outputFileName, UniqueNames } from '../src/archive/file-names.js';
import { escapeControlCharacters } from '../src/http/redact.js';
import { createLogger } from '../src/logger.js';
import type { ExecutionManifest } from '../src/index.js';
import { makeTempDir, readJson, runCli, type CliResult } from './helpers/run-cli.js';

// Anyone who can edit a workflow chooses its node titles, so titles are hostile input here.
// The fake server sends them as `node_execute_status` keys and as keys of the inline `output`,
// and the built CLI must turn each into a safe file name inside the execution folder.

const TOKEN = 'pat_names_3b7d';
const WORKFLOW_ID = '7350000000000000201';
const EXECUTE_ID = '7431000000000000201';

/** `writeFileAtomic` writes `<name>.tmp-<8 hex digits>` first, and that name must fit too. */
const TEMP_SUFFIX = '.tmp-0123abcd';
const MAX_COMPONENT_BYTES = 255;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]) *$/i;

const LONG_CHINESE = `${'长'.repeat(100)}😀`;
/** 69 characters of 3 bytes and two emoji of 4: a byte cut at the title budget lands inside the second emoji. */
const EMOJI_AT_CUT = `${'长'.repeat(69)}😀😀${'长'.repeat(31)}`;

interface NodeTitle {
  label: string;
  key: string;
  nodeId?: string;
  uuid?: string;
}

const NODE_TITLES: NodeTitle[] = [
  { label: 'slash', key: 'a/b' },
  { label: 'backslash', key: 'a\\b' },
  { label: 'single dot', key: '.' },
  { label: 'double dot', key: '..' },
  { label: 'traversal', key: '../../../escape' },
  { label: 'spaces only', key: '   ' },
  { label: 'control characters', key: 'line1\nline2\u0000\u001f\u007f\u0085end' },
  { label: 'Windows characters', key: '<>:"|?*' },
  { label: 'trailing dots and spaces', key: 'report. . ' },
  { label: 'CON', key: 'CON' },
  { label: 'nul with extension', key: 'nul.txt' },
  { label: 'Com1 mixed case', key: 'Com1' },
  { label: 'lpt1 with extension', key: 'lpt1.json' },
  { label: 'aux with trailing space', key: 'aux .md' },
  { label: 'long Chinese and emoji', key: LONG_CHINESE },
  { label: 'emoji at the cut', key: EMOJI_AT_CUT },
  // Same node id and uuid start: only the title differs, and both titles sanitise to `x_y`.
  { label: 'collision slash', key: 'x/y', nodeId: '100099', uuid: 'abcdef01-0000-4000-8000-000000000001' },
  { label: 'collision colon', key: 'x:y', nodeId: '100099', uuid: 'abcdef01-0000-4000-8000-000000000002' },
  { label: 'collision case upper', key: 'Report', nodeId: '100098', uuid: 'abcdef02-0000-4000-8000-000000000001' },
  { label: 'collision case lower', key: 'report', nodeId: '100098', uuid: 'abcdef02-0000-4000-8000-000000000002' },
];

/** Keys of the run history's `output` JSON; `Output` is the end node's result. */
const INLINE_KEYS = ['', '..', 'a/b', 'a:b', 'Output', 'OUTPUT', 'CON', 'x\u0000y', '<>:"|?*', ' . '];

function uuidFor(index: number): string {
  return `${String(index).padStart(8, '0')}-2222-4333-8444-555566667777`;
}

function nodeIdFor(index: number): string {
  return String(100000 + index);
}

function textFor(label: string): string {
  return `output of the node titled by case "${label}"`;
}

function scenario(): Scenario {
  const output: Record<string, string> = {};
  for (const key of INLINE_KEYS) output[key] = `inline value of ${JSON.stringify(key)}`;

  return {
    token: TOKEN,
    executions: [
      {
        workflowId: WORKFLOW_ID,
        executeId: EXECUTE_ID,
        record: { output },
        nodes: NODE_TITLES.map((title, index) => ({
          key: title.key,
          nodeId: title.nodeId ?? nodeIdFor(index + 1),
          nodeExecuteUuid: title.uuid ?? uuidFor(index + 1),
          text: textFor(title.label),
        })),
      },
    ],
  };
}

/** Lists every file under `dir` as a path relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

let server: FakeCozeServer;
let temp: { dir: string; remove: () => Promise<void> };
let outDir: string;
let folder: string;
let result: CliResult;
let manifest: ExecutionManifest;

beforeAll(async () => {
  server = await startFakeCozeServer({ scenario: scenario() });
  temp = await makeTempDir('coze-security-names-');
  outDir = path.join(temp.dir, 'out');
  folder = path.join(outDir, WORKFLOW_ID, EXECUTE_ID);

  const tokenFile = path.join(temp.dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  result = await runCli([
    'fetch',
    '--workflow-id', WORKFLOW_ID,
    '--execute-id', EXECUTE_ID,
    '--out', outDir,
    '--base-url', server.url,
    '--token-file', tokenFile,
    '--qps', '1000',
  ]);
  manifest = await readJson<ExecutionManifest>(path.join(folder, 'manifest.json'));
});

afterAll(async () => {
  await server?.close();
  await temp?.remove();
});

/** Returns the manifest's relative file path of the entry with this source and title. */
function fileOf(source: 'execute_nodes' | 'inline', title: string): string {
  const entry = manifest.nodes.find((node) => node.source === source && node.title === title);
  if (entry?.file == null) throw new Error(`no saved ${source} entry titled ${JSON.stringify(title)}`);
  return entry.file;
}

describe('hostile node titles', () => {
  it('run saves every entry', () => {
    expect(result.code, result.stderr).toBe(0);
    expect(manifest.totals.saved).toBe(NODE_TITLES.length + INLINE_KEYS.length);
  });

  it('nothing written outside the execution folder', async () => {
    const files = await listFiles(temp.dir);
    const outside = files.filter((file) => file !== 'token' && !file.startsWith(path.join('out', WORKFLOW_ID, EXECUTE_ID) + path.sep));

    expect(outside).toEqual([]);
  });

  it('no temporary files left', async () => {
    const files = await listFiles(folder);

    expect(files.filter((file) => file.includes('.tmp-'))).toEqual([]);
  });

  it('manifest keeps each original title', () => {
    const nodeTitles = manifest.nodes.filter((entry) => entry.source === 'execute_nodes').map((entry) => entry.title);
    const inlineTitles = manifest.nodes.filter((entry) => entry.source === 'inline').map((entry) => entry.title);

    expect(nodeTitles.sort()).toEqual(NODE_TITLES.map((title) => title.key).sort());
    expect(inlineTitles.sort()).toEqual([...INLINE_KEYS].sort());
  });

  it.each(NODE_TITLES.map((title) => [title.label, title] as const))('%s saved with its text', async (_label, title) => {
    const bytes = await readFile(path.join(folder, fileOf('execute_nodes', title.key)), 'utf8');

    expect(bytes).toBe(textFor(title.label));
  });

  it.each(INLINE_KEYS.map((key) => [JSON.stringify(key), key] as const))('inline key %s saved with its text', async (_label, key) => {
    const bytes = await readFile(path.join(folder, fileOf('inline', key)), 'utf8');

    expect(bytes).toBe(`inline value of ${JSON.stringify(key)}`);
  });

  it('every file name safe on all systems', async () => {
    for (const sub of ['nodes', 'inline']) {
      for (const raw of await readdir(path.join(folder, sub), { encoding: 'buffer' })) {
        const name = new TextDecoder('utf-8', { fatal: true }).decode(raw);
        const stem = name.split('.')[0]!;

        expect(name, 'separator').not.toMatch(/[/\\]/);
        expect(['', '.', '..'], 'dot name').not.toContain(name);
        expect(name, 'control or Windows character').not.toMatch(/[\u0000-\u001f\u007f-\u009f<>:"|?*]/);
        expect(name, 'trailing dot or space').not.toMatch(/[. ]$/);
        expect(name, 'leading dot').not.toMatch(/^\./);
        expect(stem, 'Windows reserved stem').not.toMatch(WINDOWS_RESERVED);
        expect(raw.length + TEMP_SUFFIX.length, `${name} with temporary suffix`).toBeLessThanOrEqual(MAX_COMPONENT_BYTES);
      }
    }
  });

  it('names unique ignoring case', async () => {
    for (const sub of ['nodes', 'inline']) {
      const names = await readdir(path.join(folder, sub));
      const folded = new Set(names.map((name) => name.normalize('NFC').toLowerCase()));

      expect(folded.size, sub).toBe(names.length);
    }
  });

  // Node files are named when their response arrives, so which title of a pair gets `~2` may vary.
  it('titles colliding after sanitising', () => {
    const files = [fileOf('execute_nodes', 'x/y'), fileOf('execute_nodes', 'x:y')];

    expect(files.sort()).toEqual(['nodes/x_y.100099.abcdef01.txt', 'nodes/x_y.100099.abcdef01~2.txt']);
  });

  it('titles differing only in case', () => {
    const files = [fileOf('execute_nodes', 'Report'), fileOf('execute_nodes', 'report')];
    const folded = files.map((file) => file.toLowerCase()).sort();

    expect(folded).toEqual(['nodes/report.100098.abcdef02.txt', 'nodes/report.100098.abcdef02~2.txt']);
  });

  it('inline keys colliding after sanitising', () => {
    expect([fileOf('inline', 'a/b'), fileOf('inline', 'a:b')].sort()).toEqual(['inline/a_b.txt', 'inline/a_b~2.txt']);
  });

  it('fallback name collides with Output', () => {
    const files = ['', 'Output', 'OUTPUT'].map((key) => fileOf('inline', key));

    expect(files.map((file) => file.toLowerCase()).sort()).toEqual(['inline/output.txt', 'inline/output~2.txt', 'inline/output~3.txt']);
  });

  it('empty and dot titles fall back', () => {
    const spacesIndex = NODE_TITLES.findIndex((title) => title.key === '   ') + 1;

    expect(fileOf('inline', ''), 'empty inline key').toMatch(/^inline\/output(~\d)?\.txt$/);
    expect(fileOf('execute_nodes', '   '), 'spaces only').toBe(
      `nodes/${nodeIdFor(spacesIndex)}.${nodeIdFor(spacesIndex)}.${uuidFor(spacesIndex).slice(0, 8)}.txt`,
    );
    expect(fileOf('execute_nodes', '..'), 'double dot').toMatch(/^nodes\/__\./);
  });

  it('reserved stems altered', () => {
    const nameOf = (key: string) => path.basename(fileOf('execute_nodes', key));

    expect(nameOf('CON')).toMatch(/^CON_\./);
    expect(nameOf('nul.txt')).toMatch(/^nul_\.txt\./);
    expect(nameOf('Com1')).toMatch(/^Com1_\./);
    expect(nameOf('lpt1.json')).toMatch(/^lpt1_\.json\./);
    expect(nameOf('aux .md')).toMatch(/^aux _\.md\./);
  });

  it.each([
    ['100 Chinese characters and emoji', LONG_CHINESE],
    ['emoji at the cut', EMOJI_AT_CUT],
  ])('%s cut on a whole character', (_label, key) => {
    const name = path.basename(fileOf('execute_nodes', key));
    const titlePart = name.slice(0, name.indexOf('.'));

    expect(utf8Bytes(name + TEMP_SUFFIX)).toBeLessThanOrEqual(MAX_COMPONENT_BYTES);
    expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
    expect(key.startsWith(titlePart)).toBe(true);
    expect(titlePart.length).toBeGreaterThan(60);
  });

  it('emoji kept whole at the cut', () => {
    const titlePart = path.basename(fileOf('execute_nodes', EMOJI_AT_CUT)).split('.')[0]!;

    expect(titlePart).toBe(`${'长'.repeat(69)}😀`);
  });
});

describe('hostile titles in the text summary', () => {
  // ESC and BEL start terminal control sequences: printed raw, a title could retitle or clear the terminal.
  const ESCAPE_TITLE = '\u001b]0;retitled\u0007\u001b[2Jcleared';
  let escapeServer: FakeCozeServer;
  let escapeTemp: { dir: string; remove: () => Promise<void> };
  let escapeRun: CliResult;

  beforeAll(async () => {
    escapeServer = await startFakeCozeServer({
      scenario: {
        token: TOKEN,
        executions: [
          { workflowId: WORKFLOW_ID, executeId: EXECUTE_ID, nodes: [{ key: ESCAPE_TITLE, nodeId: '100001', nodeExecuteUuid: uuidFor(1), text: 'x' }] },
        ],
        faults: [{ route: 'execute_node', action: { type: 'status', status: 400, code: 4000 } }],
      },
    });
    escapeTemp = await makeTempDir('coze-security-escape-');
    escapeRun = await runCli(
      ['fetch', '--workflow-id', WORKFLOW_ID, '--execute-id', EXECUTE_ID, '--out', escapeTemp.dir, '--base-url', escapeServer.url],
      { env: { COZE_API_TOKEN: TOKEN } },
    );
  });

  afterAll(async () => {
    await escapeServer?.close();
    await escapeTemp?.remove();
  });

  it('failed entry listed', () => {
    expect(escapeRun.code).toBe(1);
    expect(escapeRun.stderr).toContain('cleared');
  });

  it('no raw control characters on stderr', () => {
    expect(escapeRun.stderr).not.toMatch(/[\u001b\u0007]/);
  });
});

describe('escapeControlCharacters', () => {
  it.each([
    ['escape and bell', '\u001b]0;x\u0007', '\\u001b]0;x\\u0007'],
    ['newline and DEL', 'a\nb\u007f', 'a\\u000ab\\u007f'],
    ['C1 control', 'a\u009bb', 'a\\u009bb'],
    ['line separator and right-to-left override', 'a\u2028b\u202Eexe.txt', 'a\\u2028b\\u202eexe.txt'],
    ['Chinese and emoji kept', '节点😀', '节点😀'],
  ])('%s', (_label, text, expected) => {
    expect(escapeControlCharacters(text)).toBe(expected);
  });
});

describe('hostile text in log lines', () => {
  const title = 'a\u2028b\u2029c\u0085d\u202Eexe.txt\u200Fe\u009bf';
  // Every character Python's str.splitlines() breaks at, besides \r and \n.
  const lineBreaks = /[\u000b\u000c\u001c-\u001e\u0085\u2028\u2029]/;

  it('a JSON line escapes them and keeps the value', () => {
    let output = '';
    const destination = {
      write: (line: string): void => {
        output += line;
      },
    };
    createLogger({ destination }).warn({ title }, 'output could not be saved');

    expect(output.endsWith('\n')).toBe(true);
    expect(output.slice(0, -1)).not.toMatch(/[\n\r\u0080-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/);
    expect(output).not.toMatch(lineBreaks);
    expect((JSON.parse(output) as { title: string }).title).toBe(title);
  });

  it('a pretty line shows the escapes', async () => {
    const stream = new PassThrough();
    let output = '';
    stream.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    createLogger({ pretty: true, prettyDestination: stream }).warn({ title }, 'output could not be saved');
    await new Promise((resolve) => setImmediate(resolve));

    expect(output).toContain('a\\u2028b\\u2029c\\u0085d\\u202eexe.txt\\u200fe\\u009bf');
    expect(output).not.toMatch(/[\u0080-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/);
  });
});

describe('many titles clashing', () => {
  // From 100000 on, the mark `~N` needs 7 bytes, more than the 6 that outputFileName keeps free.
  it('100,001 long names fit and stay unique', () => {
    const names = new UniqueNames();
    const name = outputFileName({ title: '长'.repeat(100), nodeId: '100001', nodeExecuteUuid: uuidFor(1) });
    const claimed = new Set<string>();
    const started = performance.now();

    let last = '';
    for (let index = 0; index <= 100_000; index += 1) {
      last = names.claim(name);
      claimed.add(last);
    }

    expect(claimed.size).toBe(100_001);
    expect(last.endsWith('~100001.txt')).toBe(true);
    expect(utf8Bytes(last + TEMP_SUFFIX)).toBeLessThanOrEqual(MAX_COMPONENT_BYTES);
    expect(Buffer.from(last, 'utf8').toString('utf8')).toBe(last);
    expect(performance.now() - started, 'milliseconds').toBeLessThan(5_000);
  });
});
