/** fromFetch: the head of the handler's Response as tsgi status and headers (see fromFetch in ../fetch.ts). */
import { AppError } from '../../errors.js';
import { STATUS_TEXT } from '../../helpers/status-text.js';
import { HOP_BY_HOP_HEADERS } from '../../response/hop-by-hop.js';
import type { Header } from '../../types.js';

/** Returns the handler's result when it is a Response tsgi can send; throws AppError for anything else. */
export function checkResponse(value: unknown): Response {
  if (!isResponse(value)) {
    throw new AppError(`fetch: the handler must return a Response (${Object.prototype.toString.call(value)})`);
  }
  if (value.type === 'error' || value.status < 200) {
    throw new AppError(`fetch: the handler returned a network error, not a response (status ${value.status})`);
  }
  return value;
}

/** The tsgi status line of a Response: its code and statusText, or the standard reason when that is empty. */
export function statusLineOf(response: Response): string {
  const reason = response.statusText || (STATUS_TEXT[response.status] ?? '');
  return reason ? `${response.status} ${reason}` : String(response.status);
}

/**
 * A Response's headers as tsgi pairs: one pair per Set-Cookie (never joined: RFC 6265 §3), the fields a
 * response may not carry (response/hop-by-hop.ts) dropped.
 */
export function responseHeaders(headers: Headers): Header[] {
  const out: Header[] = [];
  headers.forEach((value, name) => {
    if (name !== 'set-cookie' && !HOP_BY_HOP_HEADERS.has(name)) out.push([name, value]);
  });
  for (const cookie of headers.getSetCookie()) out.push(['set-cookie', cookie]);
  return out;
}

/** Duck-typed, not instanceof: a handler may build its Response with another copy of the Fetch classes. */
function isResponse(value: unknown): value is Response {
  const candidate = value as Partial<Response> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.status === 'number' &&
    typeof candidate.headers?.forEach === 'function' &&
    'body' in candidate
  );
}
