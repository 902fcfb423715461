import { describe, expect, it } from 'vitest';

import { firstLine, scrubSecret } from '../../src/http/redact.js';

const TOKEN = 'pat_Zx9+Q/w.e$1';

describe('scrubSecret', () => {
  it('removes the token itself', () => {
    expect(scrubSecret(`token ${TOKEN} is invalid`, TOKEN)).toBe('token [REDACTED] is invalid');
  });

  it('removes every copy of the token', () => {
    expect(scrubSecret(`${TOKEN},${TOKEN}`, TOKEN)).toBe('[REDACTED],[REDACTED]');
  });

  it('removes what follows Bearer', () => {
    expect(scrubSecret(`Authorization: Bearer ${TOKEN}`, TOKEN)).toBe('Authorization: Bearer [REDACTED]');
  });

  it('removes another bearer token', () => {
    expect(scrubSecret('header was "authorization: bearer other_secret_42"', TOKEN)).toBe(
      'header was "authorization: bearer [REDACTED]"',
    );
  });

  it('Bearer inside JSON text', () => {
    expect(scrubSecret('{"authorization":"Bearer abc123","x":1}', undefined)).toBe(
      '{"authorization":"Bearer [REDACTED]","x":1}',
    );
  });

  it('text without secrets unchanged', () => {
    expect(scrubSecret('access token invalid', TOKEN)).toBe('access token invalid');
  });

  it('empty secret scrubs only Bearer values', () => {
    expect(scrubSecret('a b c Bearer xyz', '')).toBe('a b c Bearer [REDACTED]');
  });
});

describe('firstLine', () => {
  it('first non-blank line', () => {
    expect(firstLine('\n  <html>\r\n<body>')).toBe('<html>');
  });

  it('long line cut with an ellipsis', () => {
    expect(firstLine('x'.repeat(12), 10)).toBe(`${'x'.repeat(10)}…`);
  });

  it('empty text', () => {
    expect(firstLine('')).toBe('');
  });
});
