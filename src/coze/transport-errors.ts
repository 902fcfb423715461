/**
 * Messages for a request that failed before Coze responded: the reason on one line, and what to
 * check. Node passes on OpenSSL's error string, which names a source file and ends in a newline.
 * In a summary table, that newline breaks the row.
 */

/** `<hex>:error:<hex>:<library>:<function>:<reason>:<file>:<line>:`, as OpenSSL 3 writes it. */
const OPENSSL_ERROR = /^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/;

/** Returns the reason of a transport failure on one line, with OpenSSL's reason alone. */
export function transportReason(message: string): string {
  const openssl = OPENSSL_ERROR.exec(message.trim());
  if (openssl !== null) return `TLS: ${openssl[1]}`;
  return message.replace(/\s+/g, ' ').trim();
}

/** Returns advice for a transport failure of `code`, starting with `; `, or an empty string. */
export function transportHint(code: string | undefined): string {
  if (code === undefined) return '';
  if (code.includes('TIMEOUT')) return '; raise --timeout if Coze is slow';
  if (code === 'ECONNREFUSED') return '; nothing accepts connections at that address, so check the base URL';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return '; the host name did not resolve, so check the base URL and DNS';
  if (code.startsWith('ERR_SSL_')) return '; check that the server at the base URL speaks https';
  return '';
}
