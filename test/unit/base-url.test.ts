import { describe, expect, it } from 'vitest';

import { BASE_URLS, isLoopbackHost, resolveBaseUrl } from '../../src/coze/base-url.js';
import { UsageError } from '../../src/coze/errors.js';

// Every URL here is only parsed, so no test opens a connection.
describe('resolveBaseUrl', () => {
  it.each([
    [BASE_URLS.cn, 'https://api.coze.cn/'],
    [BASE_URLS.com, 'https://api.coze.com/'],
    ['https://api.coze.cn/', 'https://api.coze.cn/'],
    ['https://coze.example.invalid/proxy/', 'https://coze.example.invalid/proxy'],
    ['https://coze.example.invalid:8443', 'https://coze.example.invalid:8443/'],
  ])('accepts https %j', (input, expected) => {
    expect(resolveBaseUrl(input).href).toBe(expected);
  });

  it.each([
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080/'],
    ['http://127.9.9.9', 'http://127.9.9.9/'],
    ['http://[::1]:9000', 'http://[::1]:9000/'],
    ['http://localhost:3000', 'http://localhost:3000/'],
    ['http://LOCALHOST', 'http://localhost/'],
    ['http://127.0.0.1:8080/coze/', 'http://127.0.0.1:8080/coze'],
  ])('accepts loopback http %j', (input, expected) => {
    expect(resolveBaseUrl(input).href).toBe(expected);
  });

  it.each([
    'http://example.invalid',
    'http://api.coze.cn',
    'http://10.0.0.1',
    'http://128.0.0.1',
    'http://localhost.example.invalid',
    'http://127.0.0.1.example.invalid',
    'http://[::2]',
  ])('rejects plain http to %j', (input) => {
    expect(() => resolveBaseUrl(input)).toThrow(UsageError);
    expect(() => resolveBaseUrl(input)).toThrow(/^Refusing to send the token over plain HTTP to /);
  });

  it.each([
    'https://user:pass@example.invalid',
    'https://user@example.invalid',
    'http://user:pass@127.0.0.1:8080',
  ])('rejects credentials in %j', (input) => {
    expect(() => resolveBaseUrl(input)).toThrow(
      'Invalid base URL: credentials in the URL are not accepted; use COZE_API_TOKEN or --token-file.',
    );
  });

  it('credential message hides the password', () => {
    let message = '';
    try {
      resolveBaseUrl('https://user:s3cret@example.invalid');
    } catch (error) {
      message = (error as Error).message;
    }

    expect(message).not.toContain('s3cret');
  });

  it.each(['ftp://example.invalid', 'file:///tmp/x', 'ws://127.0.0.1'])('rejects scheme %j', (input) => {
    expect(() => resolveBaseUrl(input)).toThrow(`Invalid base URL "${input}": the scheme must be https (or http for a loopback address).`);
  });

  it.each(['https://api.coze.cn/v1', 'https://api.coze.cn/v1/', 'http://127.0.0.1:8790/V1', 'https://coze.example.invalid/proxy/v1'])(
    'rejects a trailing /v1 in %j',
    (input) => {
      expect(() => resolveBaseUrl(input)).toThrow(
        `Invalid base URL "${input}": leave out the trailing /v1, which every request path adds, as in ${BASE_URLS.cn}.`,
      );
    },
  );

  it.each(['api.coze.cn', '', 'https://'])('rejects unparsable %j', (input) => {
    expect(() => resolveBaseUrl(input)).toThrow(UsageError);
  });

  it.each(['https://example.invalid/?x=1', 'https://example.invalid/#top'])('rejects query or fragment %j', (input) => {
    expect(() => resolveBaseUrl(input)).toThrow(`Invalid base URL "${input}": a query or fragment is not accepted.`);
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['localhost', true],
    ['LocalHost', true],
    ['::1', true],
    ['[::1]', true],
    ['127.0.0.256', false],
    ['127.0.0', false],
    ['126.0.0.1', false],
    ['0.0.0.0', false],
    ['example.invalid', false],
  ])('%j is %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});
