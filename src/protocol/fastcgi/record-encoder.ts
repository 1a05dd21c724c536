import { FCGI_HEADER_LENGTH, FCGI_MAX_CONTENT_LENGTH, FCGI_NULL_REQUEST_ID, FCGI_VERSION_1, RecordType } from './constants.js';
import { encodeNameValuePairs } from './name-value.js';
import {
  FIXED_BODY_LENGTH,
  encodeGetValuesBody,
  writeBeginRequestBody,
  writeEndRequestBody,
  writeUnknownTypeBody,
} from './record-bodies.js';

/**
 * Record bytes (§3.3): the 8-byte header every record starts with, and whole records for clients and tests.
 * The server does not allocate records: its writer (servers/fastcgi/record-writer.ts) reserves room in a shared
 * buffer and calls writeRecordHeader and the body writers of record-bodies.ts there; these encoders are built
 * on the same functions, so the bytes tested here are the bytes the server sends.
 */

/** Writes an 8-byte record header at `at` (§3.3): version 1, type, request id and content length big-endian. */
export function writeRecordHeader(
  target: Uint8Array,
  at: number,
  type: number,
  requestId: number,
  contentLength: number,
  paddingLength = 0,
): void {
  target[at] = FCGI_VERSION_1;
  target[at + 1] = type;
  target[at + 2] = (requestId >>> 8) & 0xff;
  target[at + 3] = requestId & 0xff;
  target[at + 4] = (contentLength >>> 8) & 0xff;
  target[at + 5] = contentLength & 0xff;
  target[at + 6] = paddingLength;
  target[at + 7] = 0;
}

/** Encodes one record whose content fits in a record (<= 65535 bytes), without padding. */
export function encodeRecord(type: number, requestId: number, content: Uint8Array = new Uint8Array(0)): Buffer {
  if (content.length > FCGI_MAX_CONTENT_LENGTH) throw new RangeError(`fastcgi: record content over 65535 bytes (${content.length})`);
  const out = Buffer.allocUnsafe(FCGI_HEADER_LENGTH + content.length);
  writeRecordHeader(out, 0, type, requestId, content.length);
  out.set(content, FCGI_HEADER_LENGTH);
  return out;
}

/**
 * Encodes `data` as a stream's records (STDOUT, STDERR, PARAMS...): as many records of at most 65535 bytes as
 * it takes (§3.3). Empty data gives no record: an empty record ends a stream, so it is only ever sent on
 * purpose, by encodeRecord (conformance C3).
 */
export function encodeStreamRecords(type: number, requestId: number, data: Uint8Array): Buffer {
  const count = Math.ceil(data.length / FCGI_MAX_CONTENT_LENGTH);
  const out = Buffer.allocUnsafe(data.length + count * FCGI_HEADER_LENGTH);
  let at = 0;
  for (let offset = 0; offset < data.length; offset += FCGI_MAX_CONTENT_LENGTH) {
    const length = Math.min(FCGI_MAX_CONTENT_LENGTH, data.length - offset);
    writeRecordHeader(out, at, type, requestId, length);
    out.set(data.subarray(offset, offset + length), at + FCGI_HEADER_LENGTH);
    at += FCGI_HEADER_LENGTH + length;
  }
  return out;
}

/** Writes an END_REQUEST record (§5.5) at `at`: its header and body, 16 bytes. */
export function writeEndRequest(target: Uint8Array, at: number, requestId: number, appStatus: number, protocolStatus: number): void {
  writeRecordHeader(target, at, RecordType.END_REQUEST, requestId, FIXED_BODY_LENGTH);
  writeEndRequestBody(target, at + FCGI_HEADER_LENGTH, appStatus, protocolStatus);
}

/** Writes an UNKNOWN_TYPE management record (§4.2) at `at`: its header and body, 16 bytes. */
export function writeUnknownType(target: Uint8Array, at: number, type: number): void {
  writeRecordHeader(target, at, RecordType.UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, FIXED_BODY_LENGTH);
  writeUnknownTypeBody(target, at + FCGI_HEADER_LENGTH, type);
}

/** Encodes an END_REQUEST record (§5.5). */
export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const out = Buffer.allocUnsafe(FCGI_HEADER_LENGTH + FIXED_BODY_LENGTH);
  writeEndRequest(out, 0, requestId, appStatus, protocolStatus);
  return out;
}

/** Encodes an UNKNOWN_TYPE management record naming the type that was not understood (§4.2). */
export function encodeUnknownType(type: number): Buffer {
  const out = Buffer.allocUnsafe(FCGI_HEADER_LENGTH + FIXED_BODY_LENGTH);
  writeUnknownType(out, 0, type);
  return out;
}

/** Encodes a GET_VALUES management record asking for `names` (§4.1), for clients and tests. */
export function encodeGetValues(names: Iterable<string>): Buffer {
  return encodeRecord(RecordType.GET_VALUES, FCGI_NULL_REQUEST_ID, encodeGetValuesBody(names));
}

/** Encodes a GET_VALUES_RESULT management record with the given variables (§4.1). */
export function encodeGetValuesResult(values: Iterable<readonly [string, string]>): Buffer {
  return encodeRecord(RecordType.GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, encodeNameValuePairs(values));
}

/** Encodes a BEGIN_REQUEST record (§5.1), for clients and tests. */
export function encodeBeginRequest(requestId: number, role: number, flags: number): Buffer {
  const out = Buffer.allocUnsafe(FCGI_HEADER_LENGTH + FIXED_BODY_LENGTH);
  writeRecordHeader(out, 0, RecordType.BEGIN_REQUEST, requestId, FIXED_BODY_LENGTH);
  writeBeginRequestBody(out, FCGI_HEADER_LENGTH, role, flags);
  return out;
}
