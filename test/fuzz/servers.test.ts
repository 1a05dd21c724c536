/**
 * Fuzzing the decoders where they meet the network: real FastCGI, SCGI and uwsgi servers on loopback get
 * mutated (and generated) request streams, written in random reads, then the client shuts down its side.
 * Properties: the server closes the connection within a bound (no hang), whatever it answered is well-formed
 * for its protocol (FastCGI records; a CGI head; an HTTP status line), no error escapes (vitest fails the run
 * on an uncaught exception or unhandled rejection), every request gives its slot back once its connection is
 * closed, and a valid request right after is still answered 200.
 */
import { connect, type AddressInfo, type Server } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordType } from '../../src/protocol/fastcgi/constants.js';
import { RecordDecoder, type FastCgiRecord } from '../../src/protocol/fastcgi/record-decoder.js';
import { encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { encodeUwsgiPacket } from '../../src/protocol/uwsgi/packet.js';
import { parseCgiHead } from '../../src/response/cgi-head-parse.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { createUwsgiServer } from '../../src/servers/uwsgi.js';
import { encodeFastCgiRequest } from '../../src/testing/fastcgi-client.js';
import type { App } from '../../src/types.js';
import { byteChar, check, chunkingArb, mutate, mutationsArb, split, testTimeout, timedAsync, type Chunking } from './harness.js';

const TARGET = 'servers';
/** How long a connection may stay open after the client shut down its side. */
const CLOSE_BOUND_MS = 10_000;
const MAX_HEAD = 2048;

/** Reads the whole body, answers with PATH_INFO and the body's length. */
const app: App = async (environ, start) => {
  const body = await environ['tsgi.input'].read();
  start('200 OK', [['Content-Type', 'text/plain']]);
  // PATH_INFO is a byte string: sent back as its bytes.
  return [Buffer.from(`${environ.PATH_INFO} ${body.length}`, 'latin1')];
};

let logged = 0;
const errors = { write: (): void => void logged++ };
const servers: Record<'fastcgi' | 'scgi' | 'uwsgi', { server: Server & { activeRequests: number }; port: number }> = {} as never;

beforeAll(async () => {
  const made = {
    // Few request slots: a request that never gives its slot back shows up within a few inputs.
    fastcgi: createFastCgiServer(app, { errors, maxParamsBytes: MAX_HEAD, maxBodyBytes: 4096, maxRequests: 8 }),
    scgi: createScgiServer(app, { errors, maxHeaderBytes: MAX_HEAD, maxBodyBytes: 4096 }),
    uwsgi: createUwsgiServer(app, { errors, maxHeaderBytes: MAX_HEAD, maxBodyBytes: 4096 }),
  };
  for (const [name, server] of Object.entries(made)) {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers[name as keyof typeof servers] = { server, port: (server.address() as AddressInfo).port };
  }
});

afterAll(async () => {
  for (const { server } of Object.values(servers)) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/**
 * Connects, writes `chunks` (each its own write, a turn of the event loop apart), shuts down the sending side,
 * and collects the answer until the server closes. Fails past CLOSE_BOUND_MS.
 */
async function exchange(port: number, chunks: readonly Uint8Array[], halfClose = true): Promise<Buffer> {
  return timedAsync(
    'server exchange',
    () =>
      new Promise<Buffer>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        const received: Buffer[] = [];
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`fuzz: the server kept the connection open ${CLOSE_BOUND_MS} ms after the client's end`));
        }, CLOSE_BOUND_MS);
        socket.on('data', (chunk: Buffer) => received.push(chunk));
        // The server may reset a connection it refused while bytes were still coming: that is a close too.
        socket.on('error', () => {});
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(Buffer.concat(received));
        });
        socket.on('connect', async () => {
          for (const chunk of chunks) {
            if (socket.destroyed) return;
            socket.write(chunk);
            await new Promise((next) => setImmediate(next));
          }
          if (halfClose && !socket.destroyed) socket.end();
        });
      }),
    CLOSE_BOUND_MS + 5_000,
  );
}

/** FastCGI answers: records, version 1, only the types a server sends, nothing for an id after its END_REQUEST. */
function checkFastCgiAnswer(bytes: Buffer): FastCgiRecord[] {
  const records: FastCgiRecord[] = [];
  new RecordDecoder((record) => records.push({ ...record, content: Buffer.from(record.content) })).push(bytes);
  const ended = new Set<number>();
  const serverTypes: number[] = [RecordType.STDOUT, RecordType.STDERR, RecordType.END_REQUEST, RecordType.GET_VALUES_RESULT, RecordType.UNKNOWN_TYPE];
  for (const record of records) {
    expect(serverTypes).toContain(record.type);
    expect(ended.has(record.requestId)).toBe(false);
    if (record.type === RecordType.END_REQUEST) {
      expect(record.content.length).toBe(8);
      ended.add(record.requestId);
    }
  }
  return records;
}

/** SCGI answers: a CGI head (Status first); uwsgi answers: an HTTP/1.1 status line. Empty: closed unanswered. */
function checkHeadAnswer(bytes: Buffer, nph: boolean): void {
  if (bytes.length === 0) return;
  const head = parseCgiHead(bytes, { nph });
  expect(head.status).toBeGreaterThanOrEqual(200);
  if (nph) expect(bytes.subarray(0, 9).toString('latin1')).toBe('HTTP/1.1 ');
  else expect(bytes.subarray(0, 8).toString('latin1')).toBe('Status: ');
}

const pathArb = fc.string({ unit: fc.constantFrom('a', '/', '%', 'Z', '\u00e9'), maxLength: 12 }).map((p) => `/${p}`);
const requestArb = fc.record({
  path: pathArb,
  method: fc.constantFrom('GET', 'POST', 'HEAD'),
  // NUL-free: SCGI can't carry a NUL in a value. Unique names: SCGI refuses duplicates.
  extra: fc.uniqueArray(fc.tuple(fc.constantFrom('HTTP_HOST', 'HTTP_X', 'QUERY_STRING', 'CONTENT_TYPE', 'X'), fc.string({ unit: byteChar().filter((c) => c !== '\0'), maxLength: 20 })), {
    selector: ([name]) => name,
    maxLength: 4,
  }),
  body: fc.uint8Array({ maxLength: 200 }),
});
type RequestShape = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function variables(request: RequestShape): Array<[string, string]> {
  return [
    ['REQUEST_METHOD', request.method],
    ['SCRIPT_NAME', ''],
    ['PATH_INFO', request.path],
    ['REQUEST_URI', request.path],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ...request.extra,
    ['CONTENT_LENGTH', String(request.body.length)],
  ];
}

const encoders = {
  fastcgi: (request: RequestShape, keepConn: boolean) => encodeFastCgiRequest({ params: variables(request), stdin: request.body, keepConn }),
  scgi: (request: RequestShape) => encodeScgiRequest(variables(request), request.body),
  uwsgi: (request: RequestShape) => encodeUwsgiPacket(variables(request), request.body),
};

/** A valid request right after: the server still answers it, 200, with the body it was sent. */
async function expectAlive(protocol: keyof typeof servers): Promise<void> {
  const request: RequestShape = { path: '/alive', method: 'POST', extra: [], body: Buffer.from('ping') };
  const answer = await exchange(servers[protocol].port, [encoders[protocol](request, false)]);
  if (protocol === 'fastcgi') {
    const records = checkFastCgiAnswer(answer);
    const stdout = Buffer.concat(records.filter((r) => r.type === RecordType.STDOUT).map((r) => r.content)).toString('latin1');
    expect(stdout).toMatch(/^Status: 200 OK\r\n[^]*\r\n\r\n\/alive 4$/);
  } else {
    expect(answer.toString('latin1')).toMatch(protocol === 'scgi' ? /^Status: 200 OK\r\n[^]*\r\n\r\n\/alive 4$/ : /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\/alive 4$/);
  }
}

/** Once its connection is closed, a request gives its slot back (polled: the app settles a few turns later). */
async function expectNoActiveRequests(protocol: keyof typeof servers): Promise<void> {
  const { server } = servers[protocol];
  for (let i = 0; i < 500 && server.activeRequests !== 0; i++) await new Promise((next) => setTimeout(next, 10));
  expect(server.activeRequests).toBe(0);
}

async function fuzzOne(protocol: keyof typeof servers, bytes: Uint8Array, chunking: Chunking): Promise<void> {
  const answer = await exchange(servers[protocol].port, split(bytes, chunking));
  if (protocol === 'fastcgi') checkFastCgiAnswer(answer);
  else checkHeadAnswer(answer, protocol === 'uwsgi');
  await expectNoActiveRequests(protocol);
  await expectAlive(protocol);
}

describe('fuzz: servers over real sockets', () => {
  for (const protocol of ['fastcgi', 'scgi', 'uwsgi'] as const) {
    it(
      `${protocol}: valid requests at any chunking are answered 200 with their body`,
      async () => {
        await check(
          TARGET,
          `${protocol} valid`,
          fc.asyncProperty(requestArb, fc.boolean(), chunkingArb, async (request, keepConn, chunking) => {
            const answer = await exchange(servers[protocol].port, split(encoders[protocol](request, keepConn), chunking));
            const text =
              protocol === 'fastcgi'
                ? Buffer.concat(checkFastCgiAnswer(answer).filter((r) => r.type === RecordType.STDOUT).map((r) => r.content)).toString('latin1')
                : answer.toString('latin1');
            expect(text.startsWith(protocol === 'uwsgi' ? 'HTTP/1.1 200 OK\r\n' : 'Status: 200 OK\r\n')).toBe(true);
            if (request.method !== 'HEAD') expect(text.endsWith(`\r\n\r\n${request.path} ${request.body.length}`)).toBe(true);
          }),
          0.04,
        );
      },
      testTimeout(0.1, 150),
    );

    it(
      `${protocol}: mutated and generated streams never hang, crash or garble the server`,
      async () => {
        const inputArb = fc.oneof(
          { weight: 5, arbitrary: fc.tuple(requestArb, fc.boolean(), mutationsArb).map(([request, keepConn, mutations]) => mutate(encoders[protocol](request, keepConn), mutations)) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
        );
        await check(
          TARGET,
          `${protocol} mutated`,
          fc.asyncProperty(inputArb, chunkingArb, async (bytes, chunking) => {
            await fuzzOne(protocol, bytes, chunking);
          }),
          0.1,
        );
      },
      testTimeout(0.1, 150),
    );
  }

  it('the servers logged the refusals (the properties did reach the decoders)', () => {
    expect(logged).toBeGreaterThan(0);
  });
});
