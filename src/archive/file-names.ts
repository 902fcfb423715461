import path from 'node:path';

/** Most file systems cap one path component at 255 bytes (ext4, APFS; NTFS at 255 UTF-16 units). */
export const MAX_COMPONENT_BYTES = 255;

/** Bytes kept free in every name for the temporary suffix of an atomic write. */
export const TEMP_SUFFIX_BYTES = 16;

/**
 * Characters no file name gets: separators, those Windows forbids and control characters.
 * Line and paragraph separators split a name across lines in a listing, and bidirectional
 * controls make a name display in another order than it is stored, so they go too.
 */
const FORBIDDEN_CHARACTERS = /[<>:"/\\|?*\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/**
 * Names Windows reserves whatever the extension, compared case-insensitively on the stem.
 * Windows ignores spaces at the end of the stem, so `CON .txt` is reserved too.
 */
const WINDOWS_RESERVED_STEM = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³]) *$/i;

/**
 * Makes one path component, valid on Linux, macOS and Windows, from untrusted text such as
 * a node title. The result has no separators, control or reserved characters, no trailing
 * dot or space, no reserved device stem, is never `.` or `..`, and has at most `maxBytes`
 * of UTF-8. An empty result is replaced by `fallback`, cleaned the same way, and then by `_`.
 */
export function sanitizeComponent(raw: string, fallback: string, maxBytes = MAX_COMPONENT_BYTES): string {
  // Lone surrogates from JSON escapes are not valid UTF-8 and would be written as U+FFFD.
  let name = raw.normalize('NFC').replace(FORBIDDEN_CHARACTERS, '_').replace(/\p{Cs}/gu, '_');
  name = name.replace(/^[\s.]+/u, (lead) => lead.replace(/\./g, '_').trimStart());
  name = name.replace(/[\s.]+$/u, '');
  if (name === '') return fallback === '' ? '_' : sanitizeComponent(fallback, '', maxBytes);

  name = truncateUtf8(name, maxBytes).replace(/[\s.]+$/u, '');
  if (name === '') return fallback === '' ? '_' : sanitizeComponent(fallback, '', maxBytes);

  const stem = name.split('.')[0]!;
  if (WINDOWS_RESERVED_STEM.test(stem)) {
    const altered = `${stem}_${name.slice(stem.length)}`;
    name = Buffer.byteLength(altered, 'utf8') <= maxBytes ? altered : truncateUtf8(`_${name}`, maxBytes).replace(/[\s.]+$/u, '');
  }
  return name;
}

/** Cuts text to at most `maxBytes` of UTF-8 on a code point boundary. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;

  let bytes = 0;
  let end = 0;
  for (const codePoint of text) {
    const size = Buffer.byteLength(codePoint, 'utf8');
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += codePoint.length;
  }
  return text.slice(0, end);
}

export interface OutputNameParts {
  title: string;
  nodeId?: string | undefined;
  loopIndex?: number | undefined;
  batchIndex?: number | undefined;
  nodeExecuteUuid?: string | undefined;
}

/**
 * Builds the file name of one output: title, node id, loop and batch index and the start of
 * the uuid, so repeated runs of one node get distinct names. The suffix is kept whole and
 * the title is shortened, leaving room for the temporary suffix of an atomic write.
 */
export function outputFileName(parts: OutputNameParts, extension = '.txt'): string {
  const suffixParts: string[] = [];
  if (parts.nodeId !== undefined) suffixParts.push(sanitizeComponent(parts.nodeId, 'node', 40));
  if (parts.loopIndex !== undefined) suffixParts.push(`loop${parts.loopIndex}`);
  if (parts.batchIndex !== undefined) suffixParts.push(`batch${parts.batchIndex}`);
  if (parts.nodeExecuteUuid !== undefined) {
    suffixParts.push(sanitizeComponent(parts.nodeExecuteUuid.replace(/[^0-9A-Za-z]/g, ''), 'run', 8).slice(0, 8));
  }

  const suffix = suffixParts.map((part) => `.${part}`).join('') + extension;
  const titleBytes = MAX_COMPONENT_BYTES - TEMP_SUFFIX_BYTES - Buffer.byteLength(suffix, 'utf8') - UNIQUE_MARK_BYTES;
  const fallback = parts.nodeId === undefined ? 'output' : sanitizeComponent(parts.nodeId, 'output');
  return sanitizeComponent(parts.title, fallback, titleBytes) + suffix;
}

/** Bytes kept free for the `~N` mark that keeps names unique. */
const UNIQUE_MARK_BYTES = 6;

/**
 * Hands out names that stay unique in one folder, also on case-insensitive file systems
 * (macOS, Windows), by comparing case-folded NFC forms and adding `~2`, `~3`, … when needed.
 */
export class UniqueNames {
  private readonly taken = new Set<string>();
  /** First counter to try per folded name, so many clashing titles cost linear, not quadratic, time. */
  private readonly nextCounter = new Map<string, number>();

  /** Records a name already in use, such as one kept from an earlier run's manifest. */
  reserve(name: string): void {
    this.taken.add(foldCase(name));
  }

  isTaken(name: string): boolean {
    return this.taken.has(foldCase(name));
  }

  /**
   * Returns `name`, or `name` with `~2`, `~3`, … before its extension when taken, and
   * records the result. A long name gives up bytes of its stem so the mark always fits.
   */
  claim(name: string): string {
    const lastDot = name.lastIndexOf('.');
    const extensionStart = lastDot > name.lastIndexOf('/') + 1 ? lastDot : name.length;
    const stem = name.slice(0, extensionStart);
    const extension = name.slice(extensionStart);

    const key = foldCase(name);
    let candidate = name;
    let counter = this.nextCounter.get(key) ?? 2;
    while (this.isTaken(candidate)) {
      const ending = `~${counter}${extension}`;
      candidate = `${fitStem(stem, ending)}${ending}`;
      counter += 1;
    }
    if (candidate !== name) this.nextCounter.set(key, counter);

    this.taken.add(foldCase(candidate));
    return candidate;
  }
}

/** Cuts the last component of `stem` so that it, `ending` and a temporary suffix fit in one component. */
function fitStem(stem: string, ending: string): string {
  const start = stem.lastIndexOf('/') + 1;
  const base = stem.slice(start);
  const budget = MAX_COMPONENT_BYTES - TEMP_SUFFIX_BYTES - Buffer.byteLength(ending, 'utf8');
  if (Buffer.byteLength(base, 'utf8') <= budget) return stem;
  return stem.slice(0, start) + truncateUtf8(base, budget).replace(/[\s.]+$/u, '');
}

function foldCase(name: string): string {
  // Upper after lower folds variants such as the Greek final sigma that lower case alone keeps apart.
  return name.normalize('NFC').toLowerCase().toUpperCase();
}

/**
 * Resolves `relative` under `root` and rejects any result outside it, so no name from a
 * remote title or an old manifest can make the tool write, read or delete elsewhere.
 */
export function resolveInside(root: string, relative: string): string {
  const base = path.resolve(root);
  const resolved = path.resolve(base, relative);
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  if (resolved !== base && !resolved.startsWith(prefix)) {
    throw new RangeError(`Path "${relative}" resolves outside the archive folder ${base}`);
  }
  return resolved;
}

/** Checks an id used as a folder name: Coze workflow and execute ids are digit strings. */
export function isDigitId(value: unknown): value is string {
  // A number is rejected, not converted: a 19-digit id has already lost digits as a number.
  return typeof value === 'string' && /^\d{1,32}$/.test(value);
}
