import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

import pLimit from 'p-limit';
import { z } from 'zod';

import { UsageError } from '../coze/errors.js';
import { describeIssues } from '../coze/schemas.js';
import { TEMPORARY_FILE_PATTERN } from './atomic-write.js';
import { hashFile } from './file-digest.js';
import { resolveInside } from './file-names.js';
import { EXECUTION_FILE, INLINE_FOLDER, MANIFEST_FILE, NODES_FOLDER, RUN_STOPPED_PREFIX } from './manifest.js';
import { NODE_OUTPUT_RETENTION_MS } from './run-context.js';

/** Files an execution folder contains besides its outputs. */
const EXECUTION_FILE_NAMES = new Set([MANIFEST_FILE, EXECUTION_FILE]);

/** Atomic writes leave `<name>.tmp-<hex>` behind when a run is killed mid-write. */

/** Coze's code for an execution it does not know. */
const EXECUTION_NOT_FOUND = 4314;

/** Files hashed at once: enough to overlap disk reads, few enough to keep memory flat. */
const HASH_CONCURRENCY = 4;

/** The fields of a manifest that verify and export read; the rest is ignored. */
const archivedEntrySchema = z.looseObject({
  node_execute_uuid: z.string().optional(),
  node_id: z.string().nullable().optional(),
  title: z.string(),
  source: z.string(),
  status: z.string(),
  file: z.string().nullable(),
  bytes: z.number().nullable(),
  sha256: z.string().nullable(),
  loop_index: z.number().nullable().optional(),
  batch_index: z.number().nullable().optional(),
  is_finish: z.boolean().nullable().optional(),
  possibly_incomplete: z.boolean().optional(),
  incomplete_reasons: z.array(z.string()).optional(),
  // Only the kind is read, and an error of another shape is ignored rather than a reason to reject the manifest.
  error: z.looseObject({ kind: z.string().optional() }).optional().catch(undefined),
});
export type ArchivedEntry = z.infer<typeof archivedEntrySchema>;

const archivedManifestSchema = z.looseObject({
  workflow_id: z.string(),
  execute_id: z.string(),
  execution_file: z.string().nullable().optional(),
  execution_sha256: z.string().nullable().optional().catch(undefined),
  execute_status: z.string().nullable().optional(),
  create_time: z.number().nullable().optional().catch(undefined),
  update_time: z.number().nullable().optional().catch(undefined),
  error: z
    .looseObject({ message: z.string(), code: z.number().optional().catch(undefined), logid: z.string().optional().catch(undefined) })
    .nullable()
    .optional(),
  stopped: z.string().optional(),
  finished_at: z.string().nullable().optional(),
  // Checked against the entries by `totalsProblem`, which names each count that differs.
  totals: z.record(z.string(), z.unknown()).optional(),
  nodes: z.array(archivedEntrySchema),
});
export type ArchivedManifest = z.infer<typeof archivedManifestSchema>;

export interface VerifyFinding {
  /** Path relative to the verified folder, with `/` separators. */
  path: string;
  /** The manifest that lists the file or owns its folder, relative like `path`. */
  manifest: string;
  reason: string;
  expected_bytes?: number;
  actual_bytes?: number;
  expected_sha256?: string;
  actual_sha256?: string;
  /**
   * For a missing or altered output: whether a fetch of the execution can save it again. False
   * once Coze has deleted the output, as for an expired entry or a node output of an execution
   * that ran more than 24 hours ago. Inline outputs come from the run history and stay true.
   */
  refetchable?: boolean;
  /** For a missing or altered output: `execute_nodes`, or `inline` for one from the run history. */
  entry_source?: string;
}

/** Findings of `verify`, with the field names of its `--json` output. */
export interface VerifyReport {
  root: string;
  /** True when no file is missing, altered, unexpected, temporary or invalid. */
  intact: boolean;
  /** True when intact and nothing is left undone: every entry saved, no execution error and no unfinished run. */
  complete: boolean;
  manifests: number;
  entries_checked: number;
  /** Entries not saved (failed, pending, expired): incomplete, but not damaged. */
  entries_not_saved: number;
  /** Entries among `entries_not_saved` that expired in Coze, which no re-run can fetch. */
  entries_expired: number;
  /**
   * Entries among `entries_not_saved` whose `node_execute_status` entry was not shaped as
   * documented. A re-run fails them again unless Coze lists them differently.
   */
  entries_malformed: number;
  /**
   * Entries among `entries_not_saved` whose file could not be written, such as with a folder
   * in its place, of executions not in `deleted_in_coze`. A re-run saves them once what the
   * error names is fixed.
   */
  entries_unwritable: number;
  /**
   * Node outputs among `entries_not_saved`, neither expired nor malformed, of executions in
   * `deleted_in_coze`. No re-run can fetch them either.
   */
  entries_past_retention: number;
  /**
   * Manifests of finished executions last updated in Coze more than 24 hours ago. Coze has
   * deleted their node outputs, so no fetch brings back such a file they lack.
   */
  deleted_in_coze: string[];
  /** Manifests whose execution has an `error`, such as run history not read or execution.json not saved: incomplete, not damaged. */
  execution_errors: { manifest: string; message: string }[];
  /** Manifests of runs that stopped early or of executions still running when archived. They are incomplete, not damaged. */
  unfinished_runs: { manifest: string; reason: string }[];
  missing: VerifyFinding[];
  altered: VerifyFinding[];
  unexpected: VerifyFinding[];
  temporary: VerifyFinding[];
  /** Manifests that cannot be read, and entries whose path is unsafe or incomplete. */
  invalid: VerifyFinding[];
}

/**
 * Checks every manifest.json under `dir`: each saved entry's file must exist with the
 * manifest's `bytes` and `sha256`, and the execution folders must hold no file the manifest
 * does not list. Never reads a path that resolves outside `dir`, symbolic links included.
 * Throws `UsageError` when `dir` does not exist or contains no manifest.
 */
export async function verifyArchive(dir: string): Promise<VerifyReport> {
  const archive = await openArchive(dir);
  const report: VerifyReport = {
    root: archive.root,
    intact: true,
    complete: true,
    manifests: archive.manifests.length,
    entries_checked: 0,
    entries_not_saved: 0,
    entries_expired: 0,
    entries_malformed: 0,
    entries_unwritable: 0,
    entries_past_retention: 0,
    deleted_in_coze: [],
    execution_errors: [],
    unfinished_runs: [],
    missing: [],
    altered: [],
    unexpected: [],
    temporary: [],
    invalid: [],
  };

  for (const manifestPath of archive.manifests) await verifyExecution(archive, manifestPath, report);
  for (const folder of archive.foldersWithoutManifest) {
    const manifestName = relativeName(archive.root, path.join(folder, MANIFEST_FILE));
    report.invalid.push({
      path: manifestName,
      manifest: manifestName,
      reason: `${MANIFEST_FILE} missing from a folder laid out as an execution's, so its files cannot be checked; a fetch of this execution writes it again`,
    });
  }

  // Files are checked several at a time and findings arrive in any order. Sorted, the same archive always gives the same report.
  for (const findings of [report.missing, report.altered, report.unexpected, report.temporary, report.invalid]) findings.sort(byPath);

  const problems = report.missing.length + report.altered.length + report.unexpected.length + report.temporary.length + report.invalid.length;
  report.intact = problems === 0;
  report.complete =
    report.intact && report.entries_not_saved === 0 && report.execution_errors.length === 0 && report.unfinished_runs.length === 0;
  return report;
}

function byPath(a: VerifyFinding, b: VerifyFinding): number {
  if (a.path === b.path) return 0;
  return a.path < b.path ? -1 : 1;
}

/** The verified folder, resolved through symbolic links, and its manifests in sorted order. */
export interface OpenedArchive {
  root: string;
  realRoot: string;
  manifests: string[];
  /** Folders laid out as an execution's, with no manifest: a run killed before writing one, or one deleted since. */
  foldersWithoutManifest: string[];
}

/** Resolves `dir` and lists its manifests; throws `UsageError` for a missing folder or none. */
export async function openArchive(dir: string): Promise<OpenedArchive> {
  // path.resolve would read an empty path as the current folder, which is seldom what was meant.
  if (dir.trim() === '') throw new UsageError('Invalid archive folder "": name the folder, usually the --out folder of fetch.');
  const root = path.resolve(dir);
  let realRoot: string;
  try {
    realRoot = await realpath(root);
    if (!(await stat(realRoot)).isDirectory()) throw new UsageError(`${root} is not a folder.`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`Cannot open archive folder ${root}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`);
  }

  const manifests = (await listFiles(root, () => true, (file) => path.basename(file) === MANIFEST_FILE)).sort();
  const foldersWithoutManifest = (await findFoldersWithoutManifest(root)).sort();
  if (manifests.length === 0 && foldersWithoutManifest.length === 0) {
    throw new UsageError(`No ${MANIFEST_FILE} under ${root}: pass the --out folder of a fetch run.`);
  }
  return { root, realRoot, manifests, foldersWithoutManifest };
}

/**
 * Lists the folders under `folder`, itself included, that hold `execution.json` or a `nodes` or
 * `inline` subfolder but no manifest. Symbolic links to folders are not followed.
 */
async function findFoldersWithoutManifest(folder: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch {
    return [];
  }

  const isOutputFolder = (entry: Dirent): boolean => entry.isDirectory() && (entry.name === NODES_FOLDER || entry.name === INLINE_FOLDER);
  const looksLikeExecution = entries.some((entry) => (entry.isFile() && entry.name === EXECUTION_FILE) || isOutputFolder(entry));
  const hasManifest = entries.some((entry) => entry.name === MANIFEST_FILE);
  const found = looksLikeExecution && !hasManifest ? [folder] : [];

  for (const entry of entries) {
    // An execution's output folders are its own, so another execution never sits inside them.
    if (!entry.isDirectory() || (looksLikeExecution && isOutputFolder(entry))) continue;
    found.push(...(await findFoldersWithoutManifest(path.join(folder, entry.name))));
  }
  return found;
}

/** Reads a manifest; returns the reason instead when it is not a manifest of this tool. */
export async function readArchivedManifest(manifestPath: string): Promise<{ manifest: ArchivedManifest } | { problem: string }> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    return { problem: `cannot read the manifest: ${(error as Error).message}` };
  }

  const parsed = archivedManifestSchema.safeParse(value);
  // One line per finding: zod's own pretty form spans several lines, which a report line cannot.
  return parsed.success ? { manifest: parsed.data } : { problem: `not a manifest of coze-node-outputs: ${describeIssues(parsed.error, 'manifest')}` };
}

/**
 * Resolves a path a manifest names, relative to its folder, and rejects it when it or its
 * symbolic-link target lies outside the archive. Returns the reason for a rejected path.
 */
export async function resolveArchivedFile(
  archive: OpenedArchive,
  folder: string,
  relative: string,
): Promise<{ filePath: string } | { problem: string }> {
  let filePath: string;
  try {
    resolveInside(folder, relative);
    filePath = resolveInside(archive.root, path.relative(archive.root, path.resolve(folder, relative)));
  } catch {
    return { problem: `path "${relative}" resolves outside the archive folder` };
  }

  let target: string;
  try {
    target = await realpath(filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A missing file is the caller's finding to report; any other error is the path's.
    return code === 'ENOENT' ? { filePath } : { problem: `cannot resolve "${relative}": ${code ?? (error as Error).message}` };
  }

  const fromRoot = path.relative(archive.realRoot, target);
  if (fromRoot.startsWith('..') || path.isAbsolute(fromRoot)) {
    return { problem: `path "${relative}" links outside the archive folder` };
  }
  return { filePath };
}


async function verifyExecution(archive: OpenedArchive, manifestPath: string, report: VerifyReport): Promise<void> {
  const folder = path.dirname(manifestPath);
  const manifestName = relativeName(archive.root, manifestPath);
  const read = await readArchivedManifest(manifestPath);
  if ('problem' in read) {
    // Fetch sets such a manifest aside and starts a new one. Once Coze deleted the outputs, it takes the files under their names.
    const advice = 'a fetch of this execution writes a new one, fetching the outputs again or, after Coze deleted them, keeping the files saved under their names';
    report.invalid.push({ path: manifestName, manifest: manifestName, reason: `${read.problem}; ${advice}` });
    return;
  }
  const manifest = read.manifest;
  const deleted = isPastRetention(manifest, Date.now());
  if (deleted) report.deleted_in_coze.push(manifestName);
  const fetchTheRest = restAdvice(manifest.nodes, deleted);

  if (manifest.error) {
    // Coze's "execution not found" most often follows an id mistyped in the list.
    // A folder that contains outputs saved before came from ids Coze knew then, so deleting it would lose them.
    const hasSaved = manifest.nodes.some((entry) => entry.status === 'saved');
    const notFoundAdvice = hasSaved ? '; the outputs saved before stay listed, so keep this folder' : "; if its ids are mistyped, delete this execution's folder";
    const advice = manifest.error.code === EXECUTION_NOT_FOUND ? notFoundAdvice : '';
    // Coze support requests the logid of the failed request.
    const logid = manifest.error.logid === undefined ? '' : ` (logid ${manifest.error.logid})`;
    report.execution_errors.push({ manifest: manifestName, message: `${manifest.error.message}${logid}${advice}` });
  }
  if (manifest.finished_at === null) {
    const reason = `the run that wrote this manifest did not finish: it was killed, or is still running; ${fetchTheRest}`;
    report.unfinished_runs.push({ manifest: manifestName, reason });
  }
  if (manifest.stopped !== undefined) {
    // A run that stopped still listed every output it had planned, so all of them saved means nothing is left.
    const allSaved = manifest.nodes.every((entry) => entry.status === 'saved');
    let rest = allSaved ? 'every entry it lists is saved' : fetchTheRest;
    if (manifest.nodes.length === 0) rest = `it lists no output yet; ${noOutputAdvice(deleted)}`;
    // An execution that another one's error stopped records that error after a prefix that would repeat "stopped".
    const stopped = manifest.stopped.replace(RUN_STOPPED_PREFIX, '').replace(/\.$/, '');
    const reason = `the run stopped early: ${stopped}; ${rest}`;
    report.unfinished_runs.push({ manifest: manifestName, reason });
  }
  if (manifest.execute_status === 'Running') {
    report.unfinished_runs.push({ manifest: manifestName, reason: 'the execution was still running in Coze; a re-run after it finishes fetches the rest' });
  }

  const totals = totalsProblem(manifest);
  if (totals !== undefined) report.invalid.push({ path: manifestName, manifest: manifestName, reason: totals });

  const referenced = new Set<string>([MANIFEST_FILE]);
  const hashSlots = pLimit(HASH_CONCURRENCY);
  const checks = manifest.nodes.map((entry) => {
    if (entry.file !== null) referenced.add(path.posix.normalize(entry.file));
    if (entry.status !== 'saved') {
      report.entries_not_saved += 1;
      if (entry.status === 'expired') report.entries_expired += 1;
      // The manifest records such a node run without a node_execute_uuid.
      const malformed = entry.status === 'failed' && entry.source === 'execute_nodes' && entry.node_execute_uuid === undefined;
      if (malformed) report.entries_malformed += 1;
      if (!deleted && entry.status === 'failed' && entry.error?.kind === 'write_failed') report.entries_unwritable += 1;
      if (deleted && entry.status !== 'expired' && entry.source === 'execute_nodes' && !malformed) report.entries_past_retention += 1;
      // An unsaved entry names a file only when an earlier run saved it and it was changed or deleted since, so it is reported.
      if (entry.file !== null && entry.bytes !== null && entry.sha256 !== null) {
        return hashSlots(() => checkEntry(archive, folder, manifestName, entry, isRefetchable(entry, deleted), report));
      }
      return Promise.resolve();
    }
    report.entries_checked += 1;
    return hashSlots(() => checkEntry(archive, folder, manifestName, entry, isRefetchable(entry, deleted), report));
  });
  await Promise.all(checks);

  if (manifest.execution_file) {
    referenced.add(path.posix.normalize(manifest.execution_file));
    await checkRunHistory(archive, folder, manifestName, manifest.execution_file, manifest.execution_sha256, report);
  }
  await findStrayFiles(archive, folder, manifestName, referenced, report);
}

/** Returns what brings back the outputs of a manifest that a stopped run left with no entry. */
function noOutputAdvice(deleted: boolean): string {
  if (!deleted) return 'a fetch of this execution within 24 hours of its run fetches its outputs';
  return "Coze deleted this execution's node outputs 24 hours after its run, so a fetch brings back only its inline outputs";
}

/** Returns what brings back the entries of a manifest that are not saved, for its `Not complete` line. */
function restAdvice(entries: readonly ArchivedEntry[], deleted: boolean): string {
  if (!deleted) return 'a fetch of this execution within 24 hours of its run fetches the rest';
  // Inline outputs come from the run history, which a fetch reads again whatever the age.
  const inlineLeft = entries.some((entry) => entry.status !== 'saved' && entry.source === 'inline');
  if (inlineLeft) return "Coze deleted this execution's node outputs 24 hours after its run, so a fetch brings back only the inline outputs among the rest";
  return "Coze deleted this execution's outputs 24 hours after its run, so no fetch can bring back the rest";
}

/** Returns whether a fetch can save the entry's output again, for the advice on its file. */
function isRefetchable(entry: ArchivedEntry, deleted: boolean): boolean {
  if (entry.source === 'inline') return true;
  return entry.status !== 'expired' && !deleted;
}

/**
 * Returns whether Coze has deleted the execution's outputs: the execution finished, and its
 * `update_time` (else `create_time`) is more than 24 hours before `nowMs`. Fetch measures the
 * execution's age the same way for its expiry warning.
 */
function isPastRetention(manifest: ArchivedManifest, nowMs: number): boolean {
  // A running execution may go on for hours after it was archived, and its outputs stay until 24 hours after that.
  if (manifest.execute_status === 'Running') return false;
  const seconds = manifest.update_time ?? manifest.create_time;
  if (seconds === null || seconds === undefined) return false;
  return nowMs - seconds * 1000 > NODE_OUTPUT_RETENTION_MS;
}

/**
 * Compares a manifest's totals with counts of its entries, made as fetch makes them. Every
 * version fetch writes has matching totals, so a difference means the file was changed since.
 */
function totalsProblem(manifest: ArchivedManifest): string | undefined {
  if (manifest.totals === undefined) return undefined;

  const count = (keep: (entry: ArchivedEntry) => boolean): number => manifest.nodes.filter(keep).length;
  const counted: Record<string, number> = {
    entries: manifest.nodes.length,
    saved: count((entry) => entry.status === 'saved'),
    failed: count((entry) => entry.status === 'failed'),
    pending: count((entry) => entry.status === 'pending'),
    expired: count((entry) => entry.status === 'expired'),
    flagged: count((entry) => entry.possibly_incomplete === true),
    bytes: manifest.nodes.reduce((sum, entry) => sum + (entry.status === 'saved' ? (entry.bytes ?? 0) : 0), 0),
  };

  const differing = Object.entries(counted).filter(([name, count]) => manifest.totals![name] !== count);
  if (differing.length === 0) return undefined;
  const details = differing.map(([name, count]) => `${name} ${JSON.stringify(manifest.totals![name]) ?? 'missing'} in totals, ${count} in entries`);
  return `totals do not match the entries (${details.join('; ')}); a fetch of this execution writes the manifest again`;
}

async function checkEntry(
  archive: OpenedArchive,
  folder: string,
  manifestName: string,
  entry: ArchivedEntry,
  refetchable: boolean,
  report: VerifyReport,
): Promise<void> {
  const name = entry.file === null ? manifestName : relativeName(archive.root, path.resolve(folder, entry.file));
  if (entry.file === null || entry.bytes === null || entry.sha256 === null) {
    report.invalid.push({ path: name, manifest: manifestName, reason: `saved entry "${entry.title}" lacks file, bytes or sha256` });
    return;
  }

  const resolved = await resolveArchivedFile(archive, folder, entry.file);
  if ('problem' in resolved) {
    report.invalid.push({ path: entry.file, manifest: manifestName, reason: resolved.problem });
    return;
  }

  const expected = { expected_bytes: entry.bytes, expected_sha256: entry.sha256, refetchable, entry_source: entry.source };
  const size = await findFile(resolved.filePath);
  if (typeof size === 'string') {
    report.missing.push({ path: name, manifest: manifestName, reason: size, ...expected });
    return;
  }
  if (size !== entry.bytes) {
    report.altered.push({ path: name, manifest: manifestName, reason: 'size differs', ...expected, actual_bytes: size });
    return;
  }

  const { sha256 } = await hashFile(resolved.filePath);
  if (sha256 !== entry.sha256) {
    report.altered.push({ path: name, manifest: manifestName, reason: 'sha256 differs', ...expected, actual_bytes: size, actual_sha256: sha256 });
  }
}

/** Checks the saved run history, and its sha256 where the manifest records one: manifests of older versions do not. */
async function checkRunHistory(
  archive: OpenedArchive,
  folder: string,
  manifestName: string,
  relative: string,
  expectedSha256: string | null | undefined,
  report: VerifyReport,
): Promise<void> {
  const resolved = await resolveArchivedFile(archive, folder, relative);
  if ('problem' in resolved) {
    report.invalid.push({ path: relative, manifest: manifestName, reason: resolved.problem });
    return;
  }
  const name = relativeName(archive.root, resolved.filePath);
  if ((await fileSize(resolved.filePath)) === undefined) {
    report.missing.push({ path: name, manifest: manifestName, reason: 'run-history file not found' });
    return;
  }
  if (typeof expectedSha256 !== 'string') return;

  const { bytes, sha256 } = await hashFile(resolved.filePath);
  if (sha256 !== expectedSha256) {
    report.altered.push({ path: name, manifest: manifestName, reason: 'run-history sha256 differs', expected_sha256: expectedSha256, actual_bytes: bytes, actual_sha256: sha256 });
  }
}

/** Lists files in the execution folder that its manifest does not name. */
async function findStrayFiles(
  archive: OpenedArchive,
  folder: string,
  manifestName: string,
  referenced: ReadonlySet<string>,
  report: VerifyReport,
): Promise<void> {
  // A subfolder with its own manifest is another execution, checked on its own.
  const isOwnFolder = async (subfolder: string): Promise<boolean> => (await fileSize(path.join(subfolder, MANIFEST_FILE))) === undefined;
  const files = await listFiles(folder, isOwnFolder, () => true);

  for (const file of files) {
    const relative = path.relative(folder, file).split(path.sep).join('/');
    if (referenced.has(relative) || EXECUTION_FILE_NAMES.has(relative)) continue;

    const finding = { path: relativeName(archive.root, file), manifest: manifestName, actual_bytes: (await lstat(file)).size };
    // Only this tool's own temporary names count as temporary: those are what fetch removes.
    if (TEMPORARY_FILE_PATTERN.test(path.basename(file))) {
      report.temporary.push({ ...finding, reason: 'temporary file left by an interrupted write; the next fetch of this execution removes it' });
    } else if (insideListedFile(relative, referenced) || insideOutputName(relative)) {
      const then = report.deleted_in_coze.includes(manifestName)
        ? "; Coze deleted this execution's outputs 24 hours after its run, so no fetch can save that file"
        : ', then a fetch of this execution within 24 hours of its run saves the file';
      const reason = `inside a folder that sits where an output file belongs; move that folder out of the archive${then}`;
      report.unexpected.push({ ...finding, reason });
    } else {
      report.unexpected.push({
        ...finding,
        reason:
          "not listed in the manifest; a fetch of this execution lists it again if it is one of the execution's outputs, " +
          'which a stopped or killed run can leave unlisted; if it stays unlisted, move it out of the archive',
      });
    }
  }
}

/**
 * Returns whether `relative` lies in a folder named as output files are, right inside `nodes`
 * or `inline`: after a fetch could not write there, the manifest no longer lists the name.
 */
function insideOutputName(relative: string): boolean {
  const [outputs, name, ...rest] = relative.split('/');
  return (outputs === NODES_FOLDER || outputs === INLINE_FOLDER) && name !== undefined && name.endsWith('.txt') && rest.length > 0;
}

/** Returns whether a folder above `relative` has a name the manifest lists as a file. */
function insideListedFile(relative: string, referenced: ReadonlySet<string>): boolean {
  for (let parent = path.posix.dirname(relative); parent !== '.'; parent = path.posix.dirname(parent)) {
    if (referenced.has(parent)) return true;
  }
  return false;
}

/**
 * Lists the files under `folder` that `keep` accepts, without following symbolic links to
 * folders, so the walk stays inside it. `enter` decides which subfolders to walk into.
 */
async function listFiles(
  folder: string,
  enter: (subfolder: string) => boolean | Promise<boolean>,
  keep: (file: string) => boolean,
): Promise<string[]> {
  const files: string[] = [];
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch {
    return files;
  }

  for (const entry of entries) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) {
      if (await enter(full)) files.push(...(await listFiles(full, enter, keep)));
    } else if (keep(full)) {
      files.push(full);
    }
  }
  return files;
}

/** Size of a regular file, following symbolic links, or undefined when there is none. */
async function fileSize(filePath: string): Promise<number | undefined> {
  const found = await findFile(filePath);
  return typeof found === 'number' ? found : undefined;
}

/** Size of a regular file, following symbolic links, or why there is none. */
async function findFile(filePath: string): Promise<number | string> {
  try {
    const info = await stat(filePath);
    if (info.isFile()) return info.size;
    return info.isDirectory() ? 'a folder, not a file' : 'not a regular file';
  } catch {
    return 'file not found';
  }
}

function relativeName(root: string, filePath: string): string {
  return path.relative(root, filePath).split(path.sep).join('/');
}
