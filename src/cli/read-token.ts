import { readFile } from 'node:fs/promises';

import { UsageError } from '../coze/errors.js';

/**
 * Reads the token from `--token-file`, else `COZE_API_TOKEN`, else `COZE_API_KEY` (the name
 * Coze's JS examples use). There is no flag for the token itself: process arguments are
 * visible to other users of the machine.
 */
export async function readToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = await readFile(tokenFile, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new UsageError(`Cannot read --token-file ${tokenFile}: ${reason}. Check the path and that this user may read the file.`);
    }
    const token = text.replace(/\r?\n$/, '').trim();
    if (token === '') throw new UsageError(`--token-file ${tokenFile} is empty: write the token on its first line.`);
    return checkToken(token, `--token-file ${tokenFile}`);
  }

  // An empty variable counts as unset: service and cron files often declare one with no value.
  const fromToken = env.COZE_API_TOKEN?.trim() ?? '';
  const token = fromToken !== '' ? fromToken : (env.COZE_API_KEY?.trim() ?? '');
  if (token === '') {
    throw new UsageError('Missing token: set COZE_API_TOKEN (or COZE_API_KEY), or pass --token-file PATH.');
  }
  return checkToken(token, fromToken !== '' ? 'COZE_API_TOKEN' : 'COZE_API_KEY');
}

/**
 * Rejects a token that cannot be sent in an HTTP header, such as a file with a second line,
 * before any request. The message names the source, never the token.
 */
function checkToken(token: string, source: string): string {
  if (/[\s\u0000-\u001f\u007f]/.test(token)) {
    throw new UsageError(`Invalid token in ${source}: it contains white space or a line break. Put only the token, on one line.`);
  }
  return token;
}
