import { UsageError } from './errors.js';

export const BASE_URLS = {
  cn: 'https://api.coze.cn',
  com: 'https://api.coze.com',
} as const;
export type CozeRegion = keyof typeof BASE_URLS;

/**
 * Validates a base URL before any connection is made. The token travels in a header, so a
 * plain `http://` URL is allowed only for loopback hosts, where the fake Coze server runs.
 */
export function resolveBaseUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new UsageError(`Invalid base URL "${input}": expected for example ${BASE_URLS.cn}.`);
  }

  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`Invalid base URL "${input}": the scheme must be https (or http for a loopback address).`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('Invalid base URL: credentials in the URL are not accepted; use COZE_API_TOKEN or --token-file.');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new UsageError(`Invalid base URL "${input}": a query or fragment is not accepted.`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new UsageError(
      `Refusing to send the token over plain HTTP to ${url.hostname}: use https, or a loopback address (127.0.0.1, ::1, localhost) for testing.`,
    );
  }

  url.pathname = url.pathname.replace(/\/+$/, '');
  // Every request path starts with /v1, so a base URL ending in it, copied from an endpoint, would double it.
  if (/\/v1$/i.test(url.pathname)) {
    throw new UsageError(`Invalid base URL "${input}": leave out the trailing /v1, which every request path adds, as in ${BASE_URLS.cn}.`);
  }
  return url;
}

/** Returns true for 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;

  const octets = host.split('.');
  return (
    octets.length === 4 &&
    octets[0] === '127' &&
    octets.every((octet) => /^\d{1,3}$/.test(octet) && Number(octet) <= 255)
  );
}
