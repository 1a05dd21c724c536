import { connect, type Socket } from 'node:net';
import { FCGI_KEEP_CONN, RecordType, Role } from '../protocol/fastcgi/constants.js';
import { encodeNameValuePairs } from '../protocol/fastcgi/name-value.js';
import { decodeEndRequest } from '../protocol/fastcgi/record-bodies.js';
import { RecordDecoder, type FastCgiRecord } from '../protocol/fastcgi/record-decoder.js';
import { encodeBeginRequest, encodeRecord, encodeStreamRecords } from '../protocol/fastcgi/record-encoder.js';
import { parseCgiHead } from '../response/cgi-head-parse.js';
import type { Header } from '../types.js';

/** What a FastCGI application answered to one request. */
export interface FastCgiReply {
  /** All STDOUT bytes (a CGI response: head and body). */
  stdout: Buffer;
  /** All STDERR bytes as UTF-8. */
  stderr: string;
  appStatus: number;
  protocolStatus: number;
  /** Every record received for this request, in order (for byte-level checks). */
  records: FastCgiRecord[];
}

/** One request for FastCgiClient.request. */
export interface FastCgiClientRequest {
  id?: number;
  role?: number;
  keepConn?: boolean;
  /** CGI variables, as byte strings. */
  params: Record<string, string> | Array<[string, string]>;
  /** The body; sent as STDIN records, then the empty STDIN record. */
  stdin?: Uint8Array | string;
  /** Filter role: the DATA stream. */
  data?: Uint8Array | string;
}

/** Encodes a whole request (BEGIN_REQUEST, PARAMS, the empty PARAMS, STDIN, the empty STDIN, DATA...). */
export function encodeFastCgiRequest(request: FastCgiClientRequest): Buffer {
  const id = request.id ?? 1;
  const pairs = Array.isArray(request.params) ? request.params : Object.entries(request.params);
  const parts: Buffer[] = [encodeBeginRequest(id, request.role ?? Role.RESPONDER, request.keepConn ? FCGI_KEEP_CONN : 0)];
  parts.push(encodeStreamRecords(RecordType.PARAMS, id, encodeNameValuePairs(pairs)), encodeRecord(RecordType.PARAMS, id));
  const stdin = typeof request.stdin === 'string' ? Buffer.from(request.stdin) : request.stdin;
  if (stdin && stdin.length > 0) parts.push(encodeStreamRecords(RecordType.STDIN, id, stdin));
  parts.push(encodeRecord(RecordType.STDIN, id));
  if (request.data !== undefined) {
    const data = typeof request.data === 'string' ? Buffer.from(request.data) : request.data;
    if (data.length > 0) parts.push(encodeStreamRecords(RecordType.DATA, id, data));
    parts.push(encodeRecord(RecordType.DATA, id));
  }
  return Buffer.concat(parts);
}

/** Parses a reply's STDOUT as a CGI response. */
export function parseFastCgiResponse(reply: FastCgiReply): { status: number; headers: Header[]; body: Buffer } {
  const head = parseCgiHead(reply.stdout);
  return { status: head.status, headers: head.headers, body: reply.stdout.subarray(head.bodyStart) };
}

/**
 * A FastCGI client for tests: talks to any FastCGI application over a socket, sends well-formed requests or
 * any raw bytes (split params, padding, interleaved ids, aborts — what web servers never send), and collects
 * the records that come back, per request id. Management records (id 0) are collected under id 0.
 */
export class FastCgiClient {
  readonly socket: Socket;
  readonly #records = new Map<number, FastCgiRecord[]>();
  readonly #waiters = new Set<() => void>();
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    const decoder = new RecordDecoder((record) => {
      const copy = { ...record, content: Buffer.from(record.content) };
      const list = this.#records.get(record.requestId) ?? [];
      list.push(copy);
      this.#records.set(record.requestId, list);
      this.#notify();
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        resolve();
        this.#notify();
      });
    });
    socket.on('error', () => {});
  }

  /** Connects to `port` on 127.0.0.1, or to a unix socket path. */
  static connect(target: number | string, host = '127.0.0.1'): Promise<FastCgiClient> {
    return new Promise((resolve, reject) => {
      const socket = typeof target === 'number' ? connect(target, host) : connect(target);
      socket.once('connect', () => resolve(new FastCgiClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes raw bytes, optionally in pieces of `pieceBytes` with a pause between them (split reads). */
  async send(bytes: Uint8Array, pieceBytes?: number, pauseMs = 1): Promise<void> {
    if (!pieceBytes) {
      this.socket.write(bytes);
      return;
    }
    for (let at = 0; at < bytes.length; at += pieceBytes) {
      this.socket.write(bytes.subarray(at, at + pieceBytes));
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /** Sends a whole request and waits for its END_REQUEST. */
  async request(request: FastCgiClientRequest, timeoutMs = 10_000): Promise<FastCgiReply> {
    await this.send(encodeFastCgiRequest(request));
    return this.reply(request.id ?? 1, timeoutMs);
  }

  /** Records received so far for `id`. */
  records(id: number): FastCgiRecord[] {
    return this.#records.get(id) ?? [];
  }

  /** Waits for the END_REQUEST of `id` and returns what came for it; then forgets them (ids may be reused). */
  async reply(id: number, timeoutMs = 10_000): Promise<FastCgiReply> {
    await this.waitFor(() => this.records(id).some((record) => record.type === RecordType.END_REQUEST), timeoutMs, `END_REQUEST ${id}`);
    const records = this.records(id);
    this.#records.delete(id);
    const end = records.find((record) => record.type === RecordType.END_REQUEST) as FastCgiRecord;
    const { appStatus, protocolStatus } = decodeEndRequest(end.content);
    return {
      stdout: Buffer.concat(records.filter((r) => r.type === RecordType.STDOUT).map((r) => r.content)),
      stderr: Buffer.concat(records.filter((r) => r.type === RecordType.STDERR).map((r) => r.content)).toString('utf8'),
      appStatus,
      protocolStatus,
      records,
    };
  }

  /** Waits until `predicate` holds (checked on every record and on close), bounded by `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'a condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (predicate()) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          resolve();
        } else if (this.socket.destroyed && this.socket.readableEnded !== false) {
          // Closed: nothing more will come.
          clearTimeout(timer);
          this.#waiters.delete(check);
          reject(new Error(`fastcgi-client: connection closed while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`fastcgi-client: timed out waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
