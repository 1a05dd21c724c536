/** FastCGI 1.0 wire constants (the FastCGI Specification, Open Market, 1996, §8). */

export const FCGI_VERSION_1 = 1;
/** Every record starts with an 8-byte header (§3.3). */
export const FCGI_HEADER_LENGTH = 8;
/** contentLength is 16 bits: no record carries more. */
export const FCGI_MAX_CONTENT_LENGTH = 65535;
/** The request id of management records (§3.3). */
export const FCGI_NULL_REQUEST_ID = 0;

/** Record types (§8). */
export const RecordType = {
  BEGIN_REQUEST: 1,
  ABORT_REQUEST: 2,
  END_REQUEST: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  DATA: 8,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
  UNKNOWN_TYPE: 11,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Roles in BEGIN_REQUEST (§6). */
export const Role = { RESPONDER: 1, AUTHORIZER: 2, FILTER: 3 } as const;
export type Role = (typeof Role)[keyof typeof Role];

/** BEGIN_REQUEST flags (§5.1): keep the connection open after END_REQUEST. */
export const FCGI_KEEP_CONN = 1;

/** END_REQUEST protocolStatus values (§5.5). */
export const ProtocolStatus = { REQUEST_COMPLETE: 0, CANT_MPX_CONN: 1, OVERLOADED: 2, UNKNOWN_ROLE: 3 } as const;
export type ProtocolStatus = (typeof ProtocolStatus)[keyof typeof ProtocolStatus];

/** The variables a GET_VALUES query may ask for (§4.1). */
export const FCGI_MAX_CONNS = 'FCGI_MAX_CONNS';
export const FCGI_MAX_REQS = 'FCGI_MAX_REQS';
export const FCGI_MPXS_CONNS = 'FCGI_MPXS_CONNS';
