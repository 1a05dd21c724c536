/**
 * Small HTTP clients for the e2e tests: a raw-socket request (for bytes node's clients refuse to send or hide,
 * such as raw UTF-8 in a request line, a HEAD body, a truncated chunked stream) and the chunked-body decoder
 * that goes with it.
 */
import { connect } from 'node:net';

/** A response read off a raw socket. */
export interface RawResponse {
  /** The status line, e.g. "HTTP/1.1 200 OK". */
  statusLine: string;
  status: number;
  /** Header names lower-cased, in order. */
  headers: Array<[string, string]>;
  /** Everything after the blank line, as received (still chunked if it was). */
  rest: Buffer;
}

/** Options for rawRequest. */
export interface RawRequestOptions {
  /** Stop (destroy the socket) once this many bytes arrived. */
  maxBytes?: number;
  /** Give up after this long. Default 20 s. */
  timeoutMs?: number;
}

/**
 * Sends `request` (bytes, exactly as given) to 127.0.0.1:port and collects the answer until the server closes
 * the connection (send `Connection: close`), `maxBytes` arrived, or the timeout. Resolves with the raw bytes.
 */
export function rawRequest(port: number, request: Buffer | string, options: RawRequestOptions = {}): Promise<Buffer> {
  const { maxBytes = Number.POSITIVE_INFINITY, timeoutMs = 20_000 } = options;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const parts: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(Buffer.concat(parts));
    };
    const timer = setTimeout(() => finish(new Error(`e2e: raw request timed out after ${timeoutMs} ms (${received} bytes in)`)), timeoutMs);
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      received += data.length;
      if (received >= maxBytes) finish();
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A reset after the response (or mid-body, when the server cuts a failed response) still ends the read.
    socket.on('error', () => finish());
    socket.write(request);
  });
}

/** Splits raw response bytes into status, headers and the rest. Throws when there is no complete head. */
export function parseRawResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`e2e: no complete response head in ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))}`);
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = lines.shift() ?? '';
  const headers: Array<[string, string]> = lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
  return { statusLine, status: Number(statusLine.split(' ')[1]), headers, rest: raw.subarray(end + 4) };
}

/** The first value of `name` (lower case) in a raw response. */
export function rawHeader(response: RawResponse, name: string): string | undefined {
  return response.headers.find(([key]) => key === name)?.[1];
}

/**
 * Decodes a chunked body (RFC 9112 §7.1). `complete` is true only when the last-chunk (`0\r\n`) and the final
 * CRLF arrived: a server that cut a failed response leaves it false.
 */
export function decodeChunked(data: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let position = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', position);
    if (lineEnd < 0) return { body: Buffer.concat(parts), complete: false };
    const size = Number.parseInt(data.subarray(position, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: false };
    if (size === 0) {
      // No trailers expected: the last-chunk is followed by the blank line.
      return { body: Buffer.concat(parts), complete: data.indexOf('\r\n', lineEnd + 2) === lineEnd + 2 };
    }
    const start = lineEnd + 2;
    if (data.length < start + size + 2) {
      parts.push(data.subarray(start, Math.min(data.length, start + size)));
      return { body: Buffer.concat(parts), complete: false };
    }
    parts.push(data.subarray(start, start + size));
    position = start + size + 2;
  }
}

/** The body of a complete raw response, de-chunked when it was chunked. */
export function rawBody(response: RawResponse): Buffer {
  if (/chunked/i.test(rawHeader(response, 'transfer-encoding') ?? '')) return decodeChunked(response.rest).body;
  return response.rest;
}

/**
 * Whether a raw response's body is visibly incomplete: fewer bytes than its Content-Length, or a chunked body
 * without its last-chunk. Returns the bytes received too.
 */
export function bodyTruncation(response: RawResponse): { truncated: boolean; received: number; framing: string } {
  const length = rawHeader(response, 'content-length');
  if (length !== undefined) {
    return { truncated: response.rest.length < Number(length), received: response.rest.length, framing: `content-length ${length}` };
  }
  if (/chunked/i.test(rawHeader(response, 'transfer-encoding') ?? '')) {
    const { body, complete } = decodeChunked(response.rest);
    return { truncated: !complete, received: body.length, framing: 'chunked' };
  }
  // Close-delimited: nothing on the wire can tell a cut from an end.
  return { truncated: false, received: response.rest.length, framing: 'close-delimited' };
}

/**
 * Sends a GET for `path` over a raw socket, reads until at least `leaveAfterBytes` arrived, then destroys the
 * socket: a client that leaves mid-download. Resolves with the bytes received; rejects after `timeoutMs`.
 */
export function downloadThenLeave(port: number, path: string, leaveAfterBytes: number, timeoutMs = 20_000): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let count = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`download: only ${count} bytes arrived in time`));
    }, timeoutMs);
    socket.on('data', (data: Buffer) => {
      count += data.length;
      if (count >= leaveAfterBytes) {
        clearTimeout(timer);
        socket.destroy();
        resolve(count);
      }
    });
    socket.on('error', () => undefined);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}
