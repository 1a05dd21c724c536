/**
 * Options are checked once, when a FastCGI, SCGI or uwsgi server is created: a bad one throws a TsgiError that
 * names the server and the option, instead of a server that starts and then fails (or closes) every connection.
 */
import { connect, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TsgiError } from '../../src/errors.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { resolveFastCgiOptions } from '../../src/servers/fastcgi/options.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { createUwsgiServer } from '../../src/servers/uwsgi.js';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import { encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import type { App } from '../../src/types.js';

const hello: App = (_environ, start) => (start('200 OK', [['Content-Type', 'text/plain']]), ['hello']);
const quiet = { errors: { write: () => {} } };
/** Options passed as they might come from untyped code (a config object, JavaScript). */
type Loose = Record<string, unknown>;

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** Expects `create` to throw a TsgiError whose message matches `message`. */
function refused(create: () => unknown, message: RegExp): void {
  let thrown: unknown = null;
  try {
    create();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TsgiError);
  expect((thrown as Error).message).toMatch(message);
}

const transports = [
  { name: 'fastcgi', create: (options: Loose) => createFastCgiServer(hello, { ...quiet, ...options }) },
  { name: 'scgi', create: (options: Loose) => createScgiServer(hello, { ...quiet, ...options }) },
  { name: 'uwsgi', create: (options: Loose) => createUwsgiServer(hello, { ...quiet, ...options }) },
];

describe.each(transports)('$name: options checked at creation', ({ name, create }) => {
  it('a mount that is not a path is refused at once, naming the server and the value', () => {
    refused(() => create({ mount: 'app' }), new RegExp(`^${name}: mount must be "" or a path starting with "/" \\("app"\\)$`));
    refused(() => create({ mount: 42 }), new RegExp(`^${name}: mount must be "" or a path starting with "/" \\(42\\)$`));
  });

  it('a mount is normalised once: "/" is the root, a trailing "/" goes', () => {
    expect(create({ mount: '/' }).options.mount).toBe('');
    expect(create({ mount: '' }).options.mount).toBe('');
    expect(create({ mount: '/app//' }).options.mount).toBe('/app');
    expect(create({}).options.mount).toBe(null);
  });

  it('counts, sizes and timeouts must be whole numbers in range', () => {
    refused(() => create({ maxConnections: 0 }), new RegExp(`^${name}: maxConnections must be a whole number >= 1 \\(0\\)$`));
    refused(() => create({ maxConnections: '10' }), /maxConnections must be a whole number >= 1 \("10"\)/);
    refused(() => create({ inputHighWaterBytes: 1.5 }), /inputHighWaterBytes must be a whole number/);
    refused(() => create({ maxBodyBytes: -1 }), /maxBodyBytes must be a whole number of bytes >= 0, or Infinity/);
    refused(() => create({ headerTimeoutMs: Number.POSITIVE_INFINITY }), /headerTimeoutMs must be a number of milliseconds/);
    refused(() => create({ bodyTimeoutMs: '30' }), /bodyTimeoutMs must be a number of milliseconds/);
    expect(create({ maxBodyBytes: Number.POSITIVE_INFINITY, maxConnections: 3 }).options).toMatchObject({
      maxBodyBytes: Number.POSITIVE_INFINITY,
      maxConnections: 3,
    });
  });

  it('errors, webServerAddrs, multiprocess and forwardedAllowIps are checked too', () => {
    refused(() => create({ errors: {} }), /errors must be an object with a write\(text\) method/);
    refused(() => create({ webServerAddrs: '127.0.0.1' }), /webServerAddrs must be a list of IP addresses/);
    refused(() => create({ webServerAddrs: ['127.0.0.1', 'localhost'] }), /webServerAddrs: not an IP address \("localhost"\)/);
    refused(() => create({ multiprocess: 'yes' }), /multiprocess must be true or false/);
    refused(() => create({ forwardedAllowIps: ['127.0.0.1'] }), /forwardedAllowIps must be a comma-separated string/);
    refused(() => create({ forwardedAllowIps: 'proxy.example' }), /forwarded-allow-ips: not an IP address/);
    expect([...(create({ webServerAddrs: [' ::ffff:10.0.0.1 ', '', '::1'] }).options.webServerAddrs ?? [])]).toEqual(['10.0.0.1', '::1']);
  });
});

describe('fastcgi: its own options', () => {
  it('maxRequests, maxRequestsPerConnection, maxParamsBytes, maxBufferedBytes, idleTimeoutMs, multiplex and the role apps', () => {
    const create = (options: Loose) => createFastCgiServer(hello, { ...quiet, ...options });
    refused(() => create({ maxRequests: 0 }), /^fastcgi: maxRequests must be a whole number >= 1 \(0\)$/);
    refused(() => create({ maxRequestsPerConnection: Number.NaN }), /maxRequestsPerConnection must be a whole number/);
    refused(() => create({ maxParamsBytes: -5 }), /maxParamsBytes must be a whole number >= 1 \(-5\)/);
    refused(() => create({ maxBufferedBytes: Number.POSITIVE_INFINITY }), /maxBufferedBytes must be a whole number/);
    refused(() => create({ idleTimeoutMs: -1 }), /idleTimeoutMs must be a number of milliseconds/);
    refused(() => create({ multiplex: 1 }), /multiplex must be true or false \(1\)/);
    refused(() => create({ authorizer: 'app.ts' }), /authorizer must be an app \(a function\)/);
    refused(() => create({ filter: {} }), /filter must be an app/);
  });

  it('FCGI_WEB_SERVER_ADDRS is checked when the server is created, not on each connection', () => {
    expect(() => resolveFastCgiOptions({}, { FCGI_WEB_SERVER_ADDRS: '127.0.0.1,web.example' })).toThrow(
      /^fastcgi: FCGI_WEB_SERVER_ADDRS: not an IP address \("web.example"\)$/,
    );
    expect([...(resolveFastCgiOptions({}, { FCGI_WEB_SERVER_ADDRS: '127.0.0.1, ::ffff:10.0.0.2' }).webServerAddrs ?? [])]).toEqual([
      '127.0.0.1',
      '10.0.0.2',
    ]);
    // An explicit option wins over the environment, even a bad environment.
    expect(resolveFastCgiOptions({ webServerAddrs: null }, { FCGI_WEB_SERVER_ADDRS: 'bad' }).webServerAddrs).toBe(null);
  });

  it('GET_VALUES answers come from the checked options', () => {
    expect(createFastCgiServer(hello, { ...quiet, maxConnections: 5, maxRequests: 6, multiplex: false }).getValues).toEqual({
      FCGI_MAX_CONNS: '5',
      FCGI_MAX_REQS: '6',
      FCGI_MPXS_CONNS: '0',
    });
  });
});

describe('uwsgi: maxHeaderBytes is bounded by the packet format', () => {
  it('refuses more than 65535 (its 16-bit datasize), takes up to it', () => {
    refused(() => createUwsgiServer(hello, { ...quiet, maxHeaderBytes: 65536 }), /^uwsgi: maxHeaderBytes must be a whole number from 1 to 65535 \(65536\)$/);
    expect(createUwsgiServer(hello, { ...quiet, maxHeaderBytes: 65535 }).options.maxHeaderBytes).toBe(65535);
    expect(createScgiServer(hello, { ...quiet, maxHeaderBytes: 1_000_000 }).options.maxHeaderBytes).toBe(1_000_000);
  });
});

describe('a mounted server serves with the normalised mount', () => {
  const ENV = { REQUEST_METHOD: 'GET', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: 'localhost', SERVER_PORT: '80' };
  const paths: App = (environ, start) => (start('200 OK', [['Content-Type', 'text/plain']]), [`${environ.SCRIPT_NAME}|${environ.PATH_INFO}`]);

  async function listen(server: Server): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('fastcgi: mount "/app/" splits /app/x as SCRIPT_NAME /app, PATH_INFO /x', async () => {
    const port = await listen(createFastCgiServer(paths, { ...quiet, mount: '/app/' }));
    const client = await FastCgiClient.connect(port);
    try {
      const reply = await client.request({ params: { ...ENV, REQUEST_URI: '/app/x', SCRIPT_NAME: '/app/x' } });
      expect(parseFastCgiResponse(reply).body.toString()).toBe('/app|/x');
    } finally {
      client.close();
    }
  });

  it('scgi: mount "/app/" splits /app/x as SCRIPT_NAME /app, PATH_INFO /x', async () => {
    const port = await listen(createScgiServer(paths, { ...quiet, mount: '/app/' }));
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(encodeScgiRequest([...Object.entries(ENV), ['REQUEST_URI', '/app/x']])));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
    });
    expect(answer.endsWith('\r\n\r\n/app|/x')).toBe(true);
  });
});
