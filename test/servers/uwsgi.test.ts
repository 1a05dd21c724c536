import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { percentDecodeToByteString } from '../../src/environ/byte-policy.js';
import { encodeUwsgiPacket } from '../../src/protocol/uwsgi/packet.js';
import { createUwsgiServer, type UwsgiServer, type UwsgiServerOptions } from '../../src/servers/uwsgi.js';
import { conformanceApp, conformanceCases } from '../../src/testing/conformance.js';
import type { App } from '../../src/types.js';
import { collect, delay, exchange, open, parseReply } from './raw-socket.js';

const servers: UwsgiServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function start(app: App, options: UwsgiServerOptions = {}): Promise<{ server: UwsgiServer; port: number; log: string[] }> {
  const log: string[] = [];
  const server = createUwsgiServer(app, { errors: { write: (text) => void log.push(text) }, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, log };
}

/** nginx's uwsgi_params for a request of `uri`: PATH_INFO=$document_uri, no SCRIPT_NAME (E6). */
function nginxVars(uri: string, extra: Record<string, string> = {}): Record<string, string> {
  const path = uri.split('?')[0] as string;
  return {
    QUERY_STRING: uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '',
    REQUEST_METHOD: 'GET',
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    REQUEST_URI: uri,
    PATH_INFO: percentDecodeToByteString(path),
    DOCUMENT_ROOT: '/srv/htdocs',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_SCHEME: 'http',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '50000',
    SERVER_PORT: '80',
    SERVER_NAME: 'localhost',
    HTTP_HOST: 'localhost',
    ...extra,
  };
}

const where: App = (environ, s) => (s('200 OK', [['Content-Type', 'text/plain']]), [`${environ.SCRIPT_NAME}|${environ.PATH_INFO}|${environ['tsgi.url_scheme']}`]);
const echo: App = async (environ, s) => {
  const body = await environ['tsgi.input'].read();
  s('200 OK', [['Content-Type', 'application/octet-stream']]);
  return [body];
};

describe('uwsgi: requests and responses (E1, E3, E5)', () => {
  it('E5: the answer starts with an HTTP status line, byte-exact, then the connection closes', async () => {
    const { port } = await start((_e, s) => (s('200 OK', [['Content-Type', 'text/plain']]), ['hi']));
    const reply = await exchange(port, encodeUwsgiPacket(nginxVars('/')));
    expect(reply.bytes.toString('latin1')).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi');
    expect(reply.ending).toBe('end');
  });

  it('E3: the body is the CONTENT_LENGTH bytes after the vars; more are not the app\'s', async () => {
    const { port } = await start(echo);
    const reply = await exchange(port, encodeUwsgiPacket(nginxVars('/', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5' }), 'hello and more'));
    expect(parseReply(reply, true).body.toString()).toBe('hello');
  });

  it('E3: CONTENT_LENGTH "" or absent: no body', async () => {
    const { port } = await start(async (environ, s) => {
      const body = await environ['tsgi.input'].read();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [`${String(environ.CONTENT_LENGTH)}|${body.length}`];
    });
    expect(parseReply(await exchange(port, encodeUwsgiPacket({ CONTENT_LENGTH: '' }, 'ignored')), true).body.toString()).toBe('undefined|0');
    expect(parseReply(await exchange(port, encodeUwsgiPacket({ REQUEST_METHOD: 'GET' })), true).body.toString()).toBe('undefined|0');
  });

  it('E1/E4: a packet split at every byte, with a vars block of 65535 bytes, arrives whole', async () => {
    const { port } = await start(async (environ, s) => {
      const body = Buffer.from(await environ['tsgi.input'].read()).toString();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [`${String(environ.HTTP_X_BIG).length}:${body}`];
    });
    const base = nginxVars('/', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: '4' });
    const fixed = encodeUwsgiPacket({ ...base, HTTP_X_BIG: '' }).length - 4;
    const packet = encodeUwsgiPacket({ ...base, HTTP_X_BIG: 'v'.repeat(65535 - fixed) }, 'body');
    expect(packet.readUInt16LE(1)).toBe(65535);
    const small = encodeUwsgiPacket({ ...base, HTTP_X_BIG: 'v' }, 'body');
    expect(parseReply(await exchange(port, ...[...small].map((byte) => Uint8Array.of(byte))), true).body.toString()).toBe('1:body');
    expect(parseReply(await exchange(port, packet.subarray(0, 3), packet.subarray(3, 40000), packet.subarray(40000)), true).body.toString()).toBe(
      `${65535 - fixed}:body`,
    );
  });

  it('an app that throws gets a 500 with a status line; the log has the details', async () => {
    const { port, log } = await start(() => {
      throw new Error('kaput');
    });
    const reply = parseReply(await exchange(port, encodeUwsgiPacket(nginxVars('/'))), true);
    expect(reply.head.startsWith('HTTP/1.1 500 Internal Server Error\r\n')).toBe(true);
    expect(log.join('')).toContain('kaput');
  });
});

describe('uwsgi: paths and scheme (E6)', () => {
  it('E6: PATH_INFO=$document_uri and no SCRIPT_NAME are kept as they are; a mount re-splits them', async () => {
    const plain = await start(where);
    expect(parseReply(await exchange(plain.port, encodeUwsgiPacket(nginxVars('/app/users/42?a=1'))), true).body.toString()).toBe('|/app/users/42|http');
    const mounted = await start(where, { mount: '/app' });
    expect(parseReply(await exchange(mounted.port, encodeUwsgiPacket(nginxVars('/app/users/42?a=1'))), true).body.toString()).toBe('/app|/users/42|http');
  });

  it('E6: the scheme comes from HTTPS, REQUEST_SCHEME or UWSGI_SCHEME', async () => {
    const { port } = await start(where);
    const variants: Array<Record<string, string>> = [{ HTTPS: 'on' }, { REQUEST_SCHEME: 'https' }, { REQUEST_SCHEME: '', UWSGI_SCHEME: 'https' }];
    for (const extra of variants) {
      expect(parseReply(await exchange(port, encodeUwsgiPacket(nginxVars('/', extra))), true).body.toString(), JSON.stringify(extra)).toBe('|/|https');
    }
  });
});

describe('uwsgi: malformed input (E1, E2)', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['modifier1=1', encodeUwsgiPacket({ A: 'b' }, '', 1, 0), /modifier1=0 modifier2=0 requests are served \(1\/0\)/],
    ['modifier2=1', encodeUwsgiPacket({ A: 'b' }, '', 0, 1), /\(0\/1\)/],
    ['a truncated var', Buffer.from('00060000' + '0100' + '41' + '0500' + '62', 'hex'), /truncated var/],
    ['a bad CONTENT_LENGTH', encodeUwsgiPacket({ CONTENT_LENGTH: '5,5' }), /CONTENT_LENGTH must be decimal digits/],
  ];
  for (const [what, bytes, message] of cases) {
    it(`${what}: logged, answered 400 with a status line, closed`, async () => {
      const { port, log } = await start(where);
      const reply = await exchange(port, bytes);
      expect(parseReply(reply, true).status).toBe(400);
      expect(reply.bytes.toString('latin1').startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
      expect(log.join('')).toMatch(message);
    });
  }

  it('a vars block over maxHeaderBytes is refused from the header alone', async () => {
    const { port, log } = await start(where, { maxHeaderBytes: 1000 });
    const socket = await open(port);
    const reply = collect(socket);
    socket.write(Uint8Array.of(0, 0xe9, 0x03, 0));
    expect(parseReply(await reply, true).status).toBe(400);
    expect(log.join('')).toContain('uwsgi: vars block exceeds maxHeaderBytes (1001)');
  });
});

describe('uwsgi: the client going away', () => {
  it('a socket closed mid-response fires tsgi.signal and runs close() once', async () => {
    let closes = 0;
    let aborted = false;
    let resolveDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const { port } = await start((environ, s) => {
      environ['tsgi.signal'].addEventListener('abort', () => (aborted = true));
      s('200 OK', [['Content-Type', 'application/octet-stream']]);
      const body = (async function* () {
        for (;;) {
          yield new Uint8Array(65536);
          await delay(1);
        }
      })();
      return Object.assign(body, { close: () => void (closes++, resolveDone()) });
    });
    const socket = await open(port);
    socket.write(encodeUwsgiPacket(nginxVars('/')));
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.destroy();
    await done;
    expect([closes, aborted]).toEqual([1, true]);
  });
});

describe('conformance suite over uwsgi (in-process raw client, nginx uwsgi_params)', () => {
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      const { port } = await start(conformanceApp);
      const { method, path, headers = [], body } = testCase.request;
      const vars = nginxVars(path, { REQUEST_METHOD: method, CONTENT_LENGTH: body ? String(body.length) : '' });
      // As nginx sends them: a header given twice is two variables (the conformance case "repeated-header").
      const pairs: Array<[string, string]> = [];
      for (const [name, value] of headers) {
        if (name.toLowerCase() === 'content-type') vars.CONTENT_TYPE = value;
        else if (name.toLowerCase() !== 'proxy') pairs.push([`HTTP_${name.toUpperCase().replace(/-/g, '_')}`, value]);
      }
      const response = parseReply(await exchange(port, encodeUwsgiPacket([...Object.entries(vars), ...pairs], body ?? new Uint8Array(0))), true);
      testCase.check(
        { status: response.status, headers: response.headers, body: method === 'HEAD' ? new Uint8Array(0) : response.body },
        { scriptName: '', transport: 'uwsgi' },
      );
    });
  }
});
