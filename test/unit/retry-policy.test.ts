import { describe, expect, it } from 'vitest';

import { CozeRequestError, type CozeErrorDetails } from '../../src/coze/errors.js';
import { classifyFailure, type RetryContext } from '../../src/http/retry-policy.js';

type ErrorFields = Omit<CozeErrorDetails, 'endpoint' | 'message'>;

function cozeError(fields: ErrorFields): CozeRequestError {
  return new CozeRequestError({ endpoint: 'execute_node', message: 'attempt failed', ...fields });
}

interface Row {
  error: unknown;
  context?: RetryContext;
  retry: boolean;
  overLimit: boolean;
}

const transportRows: [string, Row][] = [
  'ECONNRESET',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_TERMINATED',
].map((code) => [
  `transport ${code}`,
  { error: cozeError({ kind: 'transport', undiciCode: code }), retry: true, overLimit: false },
]);

const finalTransportRows: [string, Row][] = [
  ['transport without a code', { error: cozeError({ kind: 'transport' }), retry: false, overLimit: false }],
  [
    'transport ERR_INVALID_ARG_TYPE',
    { error: cozeError({ kind: 'transport', undiciCode: 'ERR_INVALID_ARG_TYPE' }), retry: false, overLimit: false },
  ],
];

const httpRows: [string, Row][] = [
  [408, true],
  [429, true],
  [500, true],
  [502, true],
  [503, true],
  [504, true],
  [400, false],
  [401, false],
  [403, false],
  [404, false],
].map(([status, retry]) => [
  `HTTP ${status}`,
  { error: cozeError({ kind: 'http', httpStatus: status as number }), retry: retry as boolean, overLimit: status === 429 },
]);

const retryableCodeRows: [string, Row][] = [4009, 4013, 4020, 5000].flatMap((code) =>
  [200, 400, 429, 500, 503].map((status): [string, Row] => [
    `code ${code} with HTTP ${status}`,
    {
      error: cozeError({ kind: 'api', code, httpStatus: status }),
      retry: true,
      overLimit: code !== 5000 || status === 429,
    },
  ]),
);

const finalCodeRows: [string, Row][] = [4000, 4100, 4101, 4200, 700012006].flatMap((code) =>
  [200, 400, 401, 500, 503].map((status): [string, Row] => [
    `code ${code} with HTTP ${status}`,
    { error: cozeError({ kind: 'api', code, httpStatus: status }), retry: false, overLimit: false },
  ]),
);

const notFoundRows: [string, Row][] = [
  ['code 4314 with unknown age', { error: cozeError({ kind: 'api', code: 4314, httpStatus: 200 }), retry: false, overLimit: false }],
  [
    'code 4314 at age 0 ms',
    { error: cozeError({ kind: 'api', code: 4314, httpStatus: 200 }), context: { executionAgeMs: 0 }, retry: true, overLimit: false },
  ],
  [
    'code 4314 at age 59999 ms',
    { error: cozeError({ kind: 'api', code: 4314, httpStatus: 200 }), context: { executionAgeMs: 59_999 }, retry: true, overLimit: false },
  ],
  [
    'code 4314 at age 60000 ms',
    { error: cozeError({ kind: 'api', code: 4314, httpStatus: 200 }), context: { executionAgeMs: 60_000 }, retry: false, overLimit: false },
  ],
  [
    'code 4314 at age one hour',
    { error: cozeError({ kind: 'api', code: 4314, httpStatus: 404 }), context: { executionAgeMs: 3_600_000 }, retry: false, overLimit: false },
  ],
];

const otherKindRows: [string, Row][] = [
  ['invalid_json', { error: cozeError({ kind: 'invalid_json', httpStatus: 200 }), retry: true, overLimit: false }],
  ['unreadable_stream', { error: cozeError({ kind: 'unreadable_stream', httpStatus: 200 }), retry: true, overLimit: false }],
  ['invalid_response', { error: cozeError({ kind: 'invalid_response', httpStatus: 200 }), retry: false, overLimit: false }],
  ['too_large', { error: cozeError({ kind: 'too_large', httpStatus: 200 }), retry: false, overLimit: false }],
  ['aborted', { error: cozeError({ kind: 'aborted' }), retry: false, overLimit: false }],
  [
    'retry_after_too_long after HTTP 503',
    { error: cozeError({ kind: 'retry_after_too_long', httpStatus: 503 }), retry: false, overLimit: false },
  ],
  ['plain TypeError', { error: new TypeError('fetch failed'), retry: false, overLimit: false }],
  ['plain string', { error: 'ECONNRESET', retry: false, overLimit: false }],
];

describe('classifyFailure', () => {
  it.each([
    ...transportRows,
    ...finalTransportRows,
    ...httpRows,
    ...retryableCodeRows,
    ...finalCodeRows,
    ...notFoundRows,
    ...otherKindRows,
  ])('%s', (_label, row) => {
    const decision = classifyFailure(row.error, row.context);

    expect(decision.retry).toBe(row.retry);
    expect(decision.overLimit).toBe(row.overLimit);
  });

  it.each([
    ['1500 ms', 1500, 1500],
    ['1 ms', 1, 1],
    ['0 ms', 0, undefined],
    ['-1 (present but unusable)', -1, undefined],
    ['absent', undefined, undefined],
  ])('retryAfterMs %s', (_label, retryAfterMs, expected) => {
    const decision = classifyFailure(cozeError({ kind: 'http', httpStatus: 429, retryAfterMs }));

    expect(decision.retryAfterMs).toBe(expected);
  });

  it('retryAfterMs kept on final errors', () => {
    const decision = classifyFailure(cozeError({ kind: 'api', code: 4100, httpStatus: 401, retryAfterMs: 2000 }));

    expect(decision).toEqual({ retry: false, overLimit: false, retryAfterMs: 2000 });
  });

  it('plain TypeError decision is empty', () => {
    expect(classifyFailure(new TypeError('x is not a function'))).toEqual({
      retry: false,
      overLimit: false,
      retryAfterMs: undefined,
    });
  });
});
