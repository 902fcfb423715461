import { describe, expect, it } from 'vitest';

import { transportHint, transportReason } from '../../src/coze/transport-errors.js';

describe('transportReason', () => {
  it('keeps OpenSSL reason only', () => {
    const message = '808C656E587F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n';
    expect(transportReason(message)).toBe('TLS: wrong version number');
  });

  it('puts other reasons on one line', () => {
    expect(transportReason('connect ECONNREFUSED 127.0.0.1:1')).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(transportReason('other side closed\n  at socket\n')).toBe('other side closed at socket');
  });
});

describe('transportHint', () => {
  it('names what to check', () => {
    expect(transportHint('UND_ERR_HEADERS_TIMEOUT')).toBe('; raise --timeout if Coze is slow');
    expect(transportHint('ECONNREFUSED')).toContain('check the base URL');
    expect(transportHint('ENOTFOUND')).toContain('did not resolve');
    expect(transportHint('ERR_SSL_WRONG_VERSION_NUMBER')).toContain('speaks https');
    expect([transportHint('ECONNRESET'), transportHint(undefined)]).toEqual(['', '']);
  });
});
