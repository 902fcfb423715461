// Response bodies in Coze's envelope `{code, msg, data, detail: {logid}}`.

/** Messages sent with each Coze error code; the wording is this server's own. */
export const COZE_MESSAGES: Readonly<Record<number, string>> = {
  4000: 'invalid request parameters',
  4008: 'daily request limit reached',
  4009: 'system request cap reached, please retry later',
  4013: 'model service error, please retry later',
  4020: 'requests per minute exceed the peak limit, please retry later',
  4100: 'authentication is invalid',
  4101: 'the token has no permission to access this workflow',
  4200: 'resource not found',
  4314: 'workflow execution record not found',
  5000: 'internal server error, please retry later',
  700012006: 'access token invalid',
};

/** Returns the message for a Coze code, or a generic one for codes not in the table. */
export function messageForCode(code: number): string {
  return COZE_MESSAGES[code] ?? `request failed with code ${code}`;
}

/**
 * Builds the envelope as JSON text. `dataText` is already JSON, so large
 * cached `data` values are spliced in without being parsed and serialized again.
 */
export function envelopeText(code: number, msg: string, dataText: string | undefined, logid: string): string {
  const data = dataText === undefined ? '' : `,"data":${dataText}`;
  return `{"code":${code},"msg":${JSON.stringify(msg)}${data},"detail":{"logid":${JSON.stringify(logid)}}}`;
}
