/**
 * The request body of a CGI run: how its length is known (CONTENT_LENGTH), and the pump that feeds it to the
 * script's stdin with backpressure (a slow script slows the upload).
 */
import type { Writable } from 'node:stream';
import { waitForDrain } from '../servers/write-to-stream.js';
import { RequestError } from '../errors.js';
import type { StderrLog } from './cgi-log.js';

/** The request body, ready to pump: its CONTENT_LENGTH (undefined: none) and where its bytes come from. */
export interface PreparedBody {
  length: number | undefined;
  bytes?: Uint8Array;
  /** Bytes to copy to stdin: exactly `length` of them, or, without a length, all of them to the end. */
  stream?: AsyncIterable<Uint8Array>;
}

/** How a body of unknown length (no Content-Length: HTTP chunked, FastCGI STDIN without CONTENT_LENGTH) is sent. */
export interface UnsizedBodyPolicy {
  /**
   * True: streamed to the script as it arrives, to EOF on its stdin, without CONTENT_LENGTH (as Apache mod_cgi
   * does). False: read ahead to count it (CONTENT_LENGTH set), refused with 411 past `maxUnsizedBodyBytes`.
   */
  stream: boolean;
  maxUnsizedBodyBytes: number;
}

/** A body with no length yet: a string or bytes (their length), or a stream with or without a declared length. */
export type BodySource =
  | { kind: 'none' }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'stream'; stream: AsyncIterable<Uint8Array>; declaredLength: number | undefined };

/**
 * Works out the body's CONTENT_LENGTH and source. A stream without a declared length is streamed or read
 * ahead as `policy` says; read ahead, an empty body counts as none (no CONTENT_LENGTH, RFC 3875 §4.1.2).
 * Throws a RequestError (411) for a read-ahead body over the cap, or the source's own error.
 */
export async function prepareBody(source: BodySource, policy: UnsizedBodyPolicy): Promise<PreparedBody> {
  if (source.kind === 'none') return { length: undefined };
  if (source.kind === 'bytes') return { length: source.bytes.length, bytes: source.bytes };
  if (source.declaredLength !== undefined) return { length: source.declaredLength, stream: source.stream };
  if (policy.stream) return { length: undefined, stream: source.stream };
  // §4.2 wants CONTENT_LENGTH before the script starts: a body of unknown length is read ahead, up to a cap.
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of source.stream) {
    length += chunk.length;
    if (length > policy.maxUnsizedBodyBytes) {
      throw new RequestError(
        `cgi-host: request body without Content-Length exceeds maxUnsizedBodyBytes (${policy.maxUnsizedBodyBytes})`,
        411,
      );
    }
    chunks.push(chunk);
  }
  return { length, bytes: Buffer.concat(chunks, length) };
}

/**
 * Copies the body to the script's stdin, waiting for it to drain (backpressure), then ends stdin. Stops quietly
 * when the script closes its stdin (§4.2 lets it ignore the body). Resolves with the error of a source that
 * failed (a client that went away, a malformed chunked body), after logging it; else with undefined.
 */
export async function pumpStdin(stdin: Writable, body: PreparedBody, log: StderrLog): Promise<unknown> {
  try {
    if (body.bytes !== undefined) {
      if (body.bytes.length > 0) stdin.write(body.bytes);
    } else if (body.stream !== undefined) {
      const declared = body.length;
      let remaining = declared ?? Number.POSITIVE_INFINITY;
      if (remaining > 0) {
        for await (const chunk of body.stream) {
          const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk;
          remaining -= part.length;
          if (!stdin.write(part) && !(await waitForDrain(stdin))) return undefined;
          if (remaining === 0) break;
        }
      }
      if (declared !== undefined && remaining > 0) {
        log.line(`cgi-host: request body shorter than CONTENT_LENGTH (${declared - remaining} < ${declared})`);
      }
    }
    stdin.end();
    return undefined;
  } catch (error) {
    log.line(`cgi-host: reading the request body failed (${error instanceof Error ? error.message : String(error)})`);
    stdin.destroy();
    return error;
  }
}
