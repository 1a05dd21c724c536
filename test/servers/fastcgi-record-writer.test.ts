/**
 * The server's RecordWriter (pool buffers, one write per tick) against the protocol's encoders: over a real
 * socket, every record it queues arrives byte for byte as record-encoder.ts encodes it, whatever the path
 * (copied into the pool, a large content as a view, head and body in one record, a full pool replaced).
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ProtocolStatus, RecordType } from '../../src/protocol/fastcgi/constants.js';
import {
  encodeEndRequest,
  encodeGetValuesResult,
  encodeRecord,
  encodeStreamRecords,
  encodeUnknownType,
} from '../../src/protocol/fastcgi/record-encoder.js';
import { encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { formatCgiHead } from '../../src/response/cgi-head.js';
import { COPY_LIMIT_BYTES, POOL_BYTES, RecordWriter } from '../../src/servers/fastcgi/record-writer.js';
import type { Header } from '../../src/types.js';

const opened: Array<Server | Socket> = [];
afterEach(() => {
  for (const item of opened.splice(0)) {
    if ('destroy' in item) item.destroy();
    else item.close();
  }
});

/** A connected pair: `writer` writes into one end, `received()` resolves with every byte once it is ended. */
async function pair(): Promise<{ writer: RecordWriter; socket: Socket; received: () => Promise<Buffer> }> {
  const chunks: Buffer[] = [];
  let done!: () => void;
  const ended = new Promise<void>((resolve) => (done = resolve));
  const server = createServer((peer) => {
    opened.push(peer);
    peer.on('data', (chunk: Buffer) => chunks.push(chunk));
    peer.on('end', done);
  });
  opened.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  opened.push(socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  return {
    writer: new RecordWriter(socket),
    socket,
    received: async () => {
      await ended;
      return Buffer.concat(chunks);
    },
  };
}

const HEADERS: Header[] = [['Content-Type', 'text/plain'], ['X-Test', 'record-writer']];

describe('RecordWriter: the bytes of record-encoder.ts', () => {
  it('small records, END_REQUEST and UNKNOWN_TYPE: one write, the encoders\' bytes', async () => {
    const { writer, socket, received } = await pair();
    const small = Buffer.from('hello');
    const values = encodeNameValuePairs([['FCGI_MPXS_CONNS', '1']]);
    writer.stream(RecordType.STDOUT, 1, small);
    writer.stream(RecordType.STDOUT, 1, new Uint8Array(0)); // No record: empty data is not the end of a stream.
    writer.record(RecordType.STDOUT, 1);
    writer.endRequest(1, 3, ProtocolStatus.REQUEST_COMPLETE);
    writer.unknownType(77);
    writer.record(RecordType.GET_VALUES_RESULT, 0, values);
    expect(writer.queued).toBe(8 + 5 + 8 + 16 + 16 + 8 + values.length);
    writer.flush();
    expect(writer.queued).toBe(0);
    socket.end();
    expect((await received()).equals(
      Buffer.concat([
        encodeRecord(RecordType.STDOUT, 1, small),
        encodeRecord(RecordType.STDOUT, 1),
        encodeEndRequest(1, 3, ProtocolStatus.REQUEST_COMPLETE),
        encodeUnknownType(77),
        encodeGetValuesResult([['FCGI_MPXS_CONNS', '1']]),
      ]),
    )).toBe(true);
  });

  it('contents over COPY_LIMIT_BYTES (views) and over 65535 bytes (several records) are the encoder\'s records', async () => {
    const { writer, socket, received } = await pair();
    const medium = Buffer.alloc(COPY_LIMIT_BYTES + 1, 0x61);
    const large = Buffer.alloc(150_000);
    for (let i = 0; i < large.length; i++) large[i] = i & 0xff;
    writer.stream(RecordType.STDOUT, 2, medium);
    writer.stream(RecordType.STDERR, 2, large);
    writer.stream(RecordType.STDOUT, 2, Buffer.from('tail'));
    writer.flush();
    socket.end();
    expect((await received()).equals(
      Buffer.concat([
        encodeStreamRecords(RecordType.STDOUT, 2, medium),
        encodeStreamRecords(RecordType.STDERR, 2, large),
        encodeStreamRecords(RecordType.STDOUT, 2, Buffer.from('tail')),
      ]),
    )).toBe(true);
  });

  it('a head and body: one record when small, the head\'s then the body\'s records when not', async () => {
    const { writer, socket, received } = await pair();
    const head = formatCgiHead(200, 'OK', HEADERS);
    const body = Buffer.from('body');
    const big = Buffer.alloc(COPY_LIMIT_BYTES, 0x62);
    expect(writer.streamHead(RecordType.STDOUT, 1, 200, 'OK', HEADERS, body)).toBe(true);
    expect(writer.streamHead(RecordType.STDOUT, 2, 200, 'OK', HEADERS, body)).toBe(true); // The head cache's copy.
    expect(writer.streamHead(RecordType.STDOUT, 3, 200, 'OK', HEADERS, big)).toBe(true);
    writer.streamPair(RecordType.STDOUT, 4, head, body);
    writer.streamPair(RecordType.STDOUT, 5, head, big);
    writer.flush();
    socket.end();
    expect((await received()).equals(
      Buffer.concat([
        encodeRecord(RecordType.STDOUT, 1, Buffer.concat([head, body])),
        encodeRecord(RecordType.STDOUT, 2, Buffer.concat([head, body])),
        encodeRecord(RecordType.STDOUT, 3, head),
        encodeRecord(RecordType.STDOUT, 3, big),
        encodeRecord(RecordType.STDOUT, 4, Buffer.concat([head, body])),
        encodeRecord(RecordType.STDOUT, 5, head),
        encodeRecord(RecordType.STDOUT, 5, big),
      ]),
    )).toBe(true);
  });

  it('records across a full pool (a new one is taken) and two writers sharing it keep their bytes', async () => {
    const a = await pair();
    const b = await pair();
    const content = Buffer.alloc(COPY_LIMIT_BYTES, 0x63);
    const rounds = Math.ceil((2 * POOL_BYTES) / (COPY_LIMIT_BYTES + 8)) + 1;
    const expectedA: Buffer[] = [];
    const expectedB: Buffer[] = [];
    for (let i = 0; i < rounds; i++) {
      content[0] = i & 0xff;
      a.writer.stream(RecordType.STDOUT, 1, content);
      expectedA.push(encodeRecord(RecordType.STDOUT, 1, content));
      b.writer.endRequest(i, i, ProtocolStatus.REQUEST_COMPLETE);
      expectedB.push(encodeEndRequest(i, i, ProtocolStatus.REQUEST_COMPLETE));
    }
    a.writer.flush();
    b.writer.flush();
    a.socket.end();
    b.socket.end();
    expect((await a.received()).equals(Buffer.concat(expectedA))).toBe(true);
    expect((await b.received()).equals(Buffer.concat(expectedB))).toBe(true);
  });
});
