import type { Header } from '../../types.js';

/** A request head as a protocol's reader returns it. */
export interface OneRequestHead {
  /** CGI variables as byte strings, in an object the server may keep and change. */
  variables: Record<string, string>;
  /** Body bytes that follow the head. */
  contentLength: number;
  /** The first body bytes (those that came in the chunk that completed the head). */
  rest: Uint8Array;
}

/** What a protocol supplies to OneRequestServer. */
export interface OneRequestProtocol {
  /** For messages: "scgi", "uwsgi". */
  readonly name: string;
  /** The cap on a head when the options give none. */
  readonly defaultMaxHeaderBytes: number;
  /** The largest maxHeaderBytes the protocol can carry (uwsgi: 65535, its 16-bit datasize); unset: no bound. */
  readonly maxHeaderBytesLimit?: number;
  /** A reader for one head: push() returns the head once complete, else null; throws ProtocolError. */
  createReader(maxHeaderBytes: number): { push(chunk: Uint8Array): OneRequestHead | null };
  /** The response head bytes (status line or `Status:` field, the headers, the blank line). */
  formatHead(code: number, reason: string, headers: readonly Header[]): Buffer;
  /**
   * Set when formatHead is formatCgiHead (`nph`: the protocol of its status line, as formatCgiHead's
   * `nph.protocol`; none: a `Status:` field): the server then writes small heads straight into the response's
   * buffer (writeCgiHead) instead of making one with formatHead. Unset for any other head format.
   */
  readonly cgiHead?: { readonly nph?: string };
}
