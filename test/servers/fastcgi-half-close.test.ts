import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordType, Role, FCGI_KEEP_CONN } from '../../src/protocol/fastcgi/constants.js';
import { encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { encodeBeginRequest, encodeRecord, encodeStreamRecords } from '../../src/protocol/fastcgi/record-encoder.js';
import { createFastCgiServer, type FastCgiServer } from '../../src/servers/fastcgi.js';
import { FastCgiClient, encodeFastCgiRequest, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import type { App } from '../../src/types.js';

const servers: FastCgiServer[] = [];
const clients: FastCgiClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function start(app: App): Promise<{ server: FastCgiServer; client: FastCgiClient; log: string[] }> {
  const log: string[] = [];
  const server = createFastCgiServer(app, { errors: { write: (text) => void log.push(text) } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const client = await FastCgiClient.connect((server.address() as AddressInfo).port);
  clients.push(client);
  return { server, client, log };
}

const GET = { REQUEST_METHOD: 'GET', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: 'localhost', SERVER_PORT: '80' };

describe('FastCGI: the web server half-closes the connection', () => {
  it('a complete request sent before the half-close is still answered, then the server closes its side', async () => {
    const { client, server } = await start(async (_environ, startResponse) => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return ['late answer'];
    });
    client.socket.end(encodeFastCgiRequest({ params: GET, keepConn: true }));
    const reply = await client.reply(1);
    expect(parseFastCgiResponse(reply).body.toString()).toBe('late answer');
    await client.closed;
    expect(server.activeRequests).toBe(0);
  });

  it('a request whose body can no longer arrive is aborted: the app sees the abort, the slot is freed, the socket closes', async () => {
    let seen = '';
    const { client, server } = await start(async (environ, startResponse) => {
      try {
        for await (const _chunk of environ['tsgi.input']) {
          // Read to the end: the end never comes.
        }
        seen = 'end of body';
      } catch (error) {
        seen = (error as Error).message;
      }
      startResponse('200 OK', []);
      return [];
    });
    const pairs = encodeNameValuePairs(Object.entries({ ...GET, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '100' }));
    client.socket.end(
      Buffer.concat([
        encodeBeginRequest(1, Role.RESPONDER, FCGI_KEEP_CONN),
        encodeStreamRecords(RecordType.PARAMS, 1, pairs),
        encodeRecord(RecordType.PARAMS, 1),
        encodeStreamRecords(RecordType.STDIN, 1, Buffer.alloc(10, 1)),
      ]),
    );
    await client.closed;
    await expect.poll(() => seen).toMatch(/closed its side of the connection before the request was complete/);
    expect(server.activeRequests).toBe(0);
  });

  it('a half-close with no request in flight closes the connection', async () => {
    const { client } = await start((_e, startResponse) => (startResponse('200 OK', []), []));
    client.socket.end();
    await client.closed;
    expect(client.socket.destroyed).toBe(true);
  });
});
