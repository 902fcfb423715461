import path from 'node:path';

/** Most file systems cap one path component at 255 bytes (ext4, APFS; NTFS at 255 UTF-16 units). */
export const MAX_COMPONENT_BYTES = 255;

/** Bytes kept free in every name for the temporary suffix of an atomic write. */
export const TEMP_SUFFIX_BYTES = 16;

const FORBIDDEN_CHARACTERS = /[<>:"/\\|?*\u0000-\u001f\u007f-\u009f]/g;

/** Names Windows reserves whatever the extension, compared case-insensitively on the stem. */
const WINDOWS_RESERVED_STEM = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])$/i;

/**
 * Makes one path component from untrusted text (a node title) that is valid on Linux,
 * macOS and Windows: no separators, control or reserved characters, no trailing dot or
 * space, no reserved device stem, no `.`/`..`, and at most `maxBytes` of UTF-8.
 */
export function sanitizeComponent(raw: string, fallback: string, maxBytes = MAX_COMPONENT_BYTES): string {
  // Lone surrogates from JSON escapes are not valid UTF-8 and would be written as U+FFFD.
  let name = raw.normalize('NFC').replace(FORBIDDEN_CHARACTERS, '_').replace(/\p{Cs}/gu, '_');
  name = name.replace(/^[\s.]+/u, (lead) => lead.replace(/\./g, '_').trimStart());
  name = name.replace(/[\s.]+$/u, '');
  if (name === '') name = fallback;

  name = truncateUtf8(name, maxBytes).replace(/[\s.]+$/u, '');
  if (name === '') name = truncateUtf8(fallback, maxBytes);

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

  /** Records a name already in use, such as one kept from an earlier run's manifest. */
  reserve(name: string): void {
    this.taken.add(foldCase(name));
  }

  isTaken(name: string): boolean {
    return this.taken.has(foldCase(name));
  }

  claim(name: string): string {
    const extensionStart = name.lastIndexOf('.') > 0 ? name.lastIndexOf('.') : name.length;
    const stem = name.slice(0, extensionStart);
    const extension = name.slice(extensionStart);

    let candidate = name;
    for (let counter = 2; this.isTaken(candidate); counter += 1) {
      candidate = `${stem}~${counter}${extension}`;
    }
    this.taken.add(foldCase(candidate));
    return candidate;
  }
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
export function isDigitId(value: string): boolean {
  return /^\d{1,32}$/.test(value);
}
