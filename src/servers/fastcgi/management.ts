import { FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS, FCGI_NULL_REQUEST_ID, RecordType } from '../../protocol/fastcgi/constants.js';
import { answerGetValues } from '../../protocol/fastcgi/record-bodies.js';
import type { ResolvedFastCgiOptions } from './options.js';
import type { RecordWriter } from './record-writer.js';

/** Most GET_VALUES names answered in one query; a longer query is cut there (no unbounded work per record). */
export const MAX_GET_VALUES_NAMES = 64;

/**
 * The values this server gives GET_VALUES (§4.1): FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS. Made once
 * per server from its resolved options (they never change), not per query.
 */
export function getValuesOf(options: ResolvedFastCgiOptions): Readonly<Record<string, string>> {
  return Object.freeze({
    [FCGI_MAX_CONNS]: String(options.maxConnections),
    [FCGI_MAX_REQS]: String(options.maxRequests),
    [FCGI_MPXS_CONNS]: options.multiplex ? '1' : '0',
  });
}

/**
 * Answers a management record (request id 0, §4): GET_VALUES with a GET_VALUES_RESULT of the values in
 * `values` it asks for, any other type with UNKNOWN_TYPE naming it (conformance C10, C11). Queues the answer
 * and schedules the flush. A malformed GET_VALUES body throws a ProtocolError (the connection closes).
 */
export function answerManagementRecord(writer: RecordWriter, values: Readonly<Record<string, string>>, type: number, content: Uint8Array): void {
  if (type === RecordType.GET_VALUES) {
    writer.record(RecordType.GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, answerGetValues(content, values, MAX_GET_VALUES_NAMES));
  } else {
    writer.unknownType(type);
  }
  writer.schedule();
}
