import { ProtocolError } from '../../errors.js';
import { FCGI_KEEP_CONN } from './constants.js';
import { decodeNameValuePairs, encodeNameValuePairs } from './name-value.js';

/**
 * The bodies of the fixed-size records (§4.2, §5.1, §5.5) and of the management answers (§4.1): what each
 * byte of them means, in one place. Writers write into a caller's buffer at an offset (the server packs
 * records straight into its pool); decoders check the length first and throw a ProtocolError for a body that
 * is not the size the specification gives it.
 */

/** BEGIN_REQUEST, END_REQUEST and UNKNOWN_TYPE carry a body of exactly 8 bytes. */
export const FIXED_BODY_LENGTH = 8;

/** What a BEGIN_REQUEST body says (§5.1). */
export interface BeginRequestBody {
  role: number;
  /** FCGI_KEEP_CONN set: the connection stays open after END_REQUEST. */
  keepConn: boolean;
}

/** What an END_REQUEST body says (§5.5). */
export interface EndRequestBody {
  /** The app's exit status, unsigned 32 bits. */
  appStatus: number;
  protocolStatus: number;
}

/** Writes a BEGIN_REQUEST body at `at`: role big-endian, flags, 5 reserved zero bytes. */
export function writeBeginRequestBody(target: Uint8Array, at: number, role: number, flags: number): void {
  target[at] = (role >>> 8) & 0xff;
  target[at + 1] = role & 0xff;
  target[at + 2] = flags;
  target.fill(0, at + 3, at + FIXED_BODY_LENGTH);
}

/** Decodes a BEGIN_REQUEST body; a body that is not 8 bytes is a ProtocolError (conformance C7). */
export function decodeBeginRequest(content: Uint8Array): BeginRequestBody {
  if (content.length !== FIXED_BODY_LENGTH) throw new ProtocolError(`fastcgi: BEGIN_REQUEST body is not 8 bytes (${content.length})`);
  return {
    role: ((content[0] as number) << 8) | (content[1] as number),
    keepConn: ((content[2] as number) & FCGI_KEEP_CONN) !== 0,
  };
}

/** Writes an END_REQUEST body at `at`: appStatus big-endian (taken as unsigned), protocolStatus, 3 reserved zero bytes. */
export function writeEndRequestBody(target: Uint8Array, at: number, appStatus: number, protocolStatus: number): void {
  const status = appStatus >>> 0;
  target[at] = (status >>> 24) & 0xff;
  target[at + 1] = (status >>> 16) & 0xff;
  target[at + 2] = (status >>> 8) & 0xff;
  target[at + 3] = status & 0xff;
  target[at + 4] = protocolStatus;
  target[at + 5] = 0;
  target[at + 6] = 0;
  target[at + 7] = 0;
}

/** Decodes an END_REQUEST body; a body that is not 8 bytes is a ProtocolError. */
export function decodeEndRequest(content: Uint8Array): EndRequestBody {
  if (content.length !== FIXED_BODY_LENGTH) throw new ProtocolError(`fastcgi: END_REQUEST body is not 8 bytes (${content.length})`);
  const appStatus = (((content[0] as number) << 24) | ((content[1] as number) << 16) | ((content[2] as number) << 8) | (content[3] as number)) >>> 0;
  return { appStatus, protocolStatus: content[4] as number };
}

/** What an END_REQUEST protocolStatus means, in words (§5.5), for messages. */
export function protocolStatusName(status: number): string {
  return ['request complete', 'cannot multiplex', 'overloaded', 'unknown role'][status] ?? 'unknown';
}

/** Writes an UNKNOWN_TYPE body at `at` (§4.2): the type not understood, 7 reserved zero bytes. */
export function writeUnknownTypeBody(target: Uint8Array, at: number, type: number): void {
  target[at] = type;
  target.fill(0, at + 1, at + FIXED_BODY_LENGTH);
}

/** Decodes an UNKNOWN_TYPE body: the type the peer did not understand. */
export function decodeUnknownType(content: Uint8Array): number {
  if (content.length !== FIXED_BODY_LENGTH) throw new ProtocolError(`fastcgi: UNKNOWN_TYPE body is not 8 bytes (${content.length})`);
  return content[0] as number;
}

/** Encodes a GET_VALUES body (§4.1): the names asked for, each with an empty value. */
export function encodeGetValuesBody(names: Iterable<string>): Buffer {
  const pairs: Array<[string, string]> = [];
  for (const name of names) pairs.push([name, '']);
  return encodeNameValuePairs(pairs);
}

/**
 * The body of the GET_VALUES_RESULT that answers the GET_VALUES body `query` (§4.1): the names asked for that
 * `known` has a value for, in the order asked, unknown names left out. At most `maxNames` names of the query
 * are looked at (a longer query is cut there: no unbounded work per record). A malformed query throws a
 * ProtocolError (decodeNameValuePairs).
 */
export function answerGetValues(query: Uint8Array, known: Readonly<Record<string, string>>, maxNames: number): Buffer {
  const answer: Array<[string, string]> = [];
  for (const [name] of decodeNameValuePairs(query).slice(0, maxNames)) {
    if (Object.hasOwn(known, name)) answer.push([name, known[name] as string]);
  }
  return encodeNameValuePairs(answer);
}
