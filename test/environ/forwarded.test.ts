import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEnviron } from '../../src/environ/create-environ.js';
import { applyForwarded } from '../../src/environ/forwarded.js';
import { createForwardedPolicy } from '../../src/environ/forwarded-policy.js';
import { createHttpServer, type HttpServerOptions } from '../../src/servers/http.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import type { App, Environ } from '../../src/types.js';

const local = createForwardedPolicy('127.0.0.1,::1');

function apply(vars: Record<string, string>, list = '127.0.0.1,::1'): { vars: Record<string, string>; scheme: string | undefined } {
  const copy = { ...vars };
  const scheme = applyForwarded(copy, createForwardedPolicy(list));
  return { vars: copy, scheme };
}

describe('createForwardedPolicy', () => {
  it('takes addresses, CIDR networks and "*"; an IPv4 entry covers its ::ffff: form', () => {
    const policy = createForwardedPolicy('10.0.0.0/8, 192.0.2.7 ,fd00::/8');
    expect(policy.trusts('10.200.3.4')).toBe(true);
    expect(policy.trusts('192.0.2.7')).toBe(true);
    expect(policy.trusts('192.0.2.8')).toBe(false);
    expect(policy.trusts('fd12::1')).toBe(true);
    expect(policy.trusts('::ffff:10.1.1.1')).toBe(true);
    expect(policy.trusts('unknown')).toBe(false);
    expect(local.trusts('::1')).toBe(true);
    expect(createForwardedPolicy('*').trusts('203.0.113.9')).toBe(true);
    expect(createForwardedPolicy('').trusts('127.0.0.1')).toBe(false);
  });

  it('refuses what is not an address or network, naming it', () => {
    expect(() => createForwardedPolicy('127.0.0.1,localhost')).toThrow(/"localhost"/);
    expect(() => createForwardedPolicy('10.0.0.0/33')).toThrow(/prefix/);
    expect(() => createForwardedPolicy('10.0.0.0/x')).toThrow(/prefix/);
  });
});

describe('applyForwarded', () => {
  const base = { REMOTE_ADDR: '127.0.0.1', REMOTE_PORT: '5555', HTTP_HOST: 'backend:8000', SERVER_NAME: 'backend', SERVER_PORT: '8000' };

  it('X-Forwarded-For from a trusted peer: the rightmost untrusted hop is the client', () => {
    // A client that forged "1.1.1.1" in front of its own address: the forged part is left of the real hop.
    const { vars } = apply({ ...base, HTTP_X_FORWARDED_FOR: '1.1.1.1, 203.0.113.5, 127.0.0.1' });
    expect(vars.REMOTE_ADDR).toBe('203.0.113.5');
    expect(vars.REMOTE_PORT).toBeUndefined();
  });

  it('when every hop is trusted, the leftmost is the client', () => {
    expect(apply({ ...base, HTTP_X_FORWARDED_FOR: '10.0.0.2, 10.0.0.1' }, '127.0.0.1,10.0.0.0/8').vars.REMOTE_ADDR).toBe('10.0.0.2');
  });

  it('from a peer not in the list, nothing changes', () => {
    const vars = { ...base, REMOTE_ADDR: '198.51.100.1', HTTP_X_FORWARDED_FOR: '203.0.113.5', HTTP_X_FORWARDED_PROTO: 'https', HTTP_X_FORWARDED_HOST: 'evil.example' };
    const result = apply(vars);
    expect(result.vars).toEqual(vars);
    expect(result.scheme).toBeUndefined();
  });

  it('X-Forwarded-Proto and -Host set the scheme, HTTPS, HTTP_HOST, SERVER_NAME and SERVER_PORT', () => {
    const { vars, scheme } = apply({ ...base, HTTP_X_FORWARDED_FOR: '203.0.113.5', HTTP_X_FORWARDED_PROTO: 'https', HTTP_X_FORWARDED_HOST: 'www.example.com' });
    expect(scheme).toBe('https');
    expect(vars).toMatchObject({ HTTPS: 'on', HTTP_HOST: 'www.example.com', SERVER_NAME: 'www.example.com', SERVER_PORT: '443' });
    const ported = apply({ ...base, HTTP_X_FORWARDED_PROTO: 'http', HTTPS: 'on', HTTP_X_FORWARDED_HOST: '[2001:db8::5]:8443' });
    expect(ported.scheme).toBe('http');
    expect(ported.vars.HTTPS).toBeUndefined();
    expect(ported.vars).toMatchObject({ SERVER_NAME: '[2001:db8::5]', SERVER_PORT: '8443', REMOTE_ADDR: '127.0.0.1' });
  });

  it('a Host value that is not host[:port] is ignored', () => {
    expect(apply({ ...base, HTTP_X_FORWARDED_HOST: 'a.com/path' }).vars.HTTP_HOST).toBe('backend:8000');
    expect(apply({ ...base, HTTP_X_FORWARDED_HOST: 'user@a.com' }).vars.HTTP_HOST).toBe('backend:8000');
  });

  it('RFC 7239 Forwarded: quoted IPv6 with port, proto and host of the chosen hop', () => {
    const { vars, scheme } = apply({
      ...base,
      HTTP_FORWARDED: 'for=1.1.1.1;proto=http, for="[2001:db8:cafe::17]:4711";proto=https;host="shop.example:8443", for=127.0.0.1;proto=http',
      HTTP_X_FORWARDED_FOR: '9.9.9.9',
    });
    expect(vars.REMOTE_ADDR).toBe('2001:db8:cafe::17');
    expect(scheme).toBe('https');
    expect(vars).toMatchObject({ HTTP_HOST: 'shop.example:8443', SERVER_NAME: 'shop.example', SERVER_PORT: '8443' });
  });

  it('Forwarded: an obfuscated or unknown client leaves REMOTE_ADDR, a bad element is skipped', () => {
    expect(apply({ ...base, HTTP_FORWARDED: 'for=_hidden;proto=https' })).toMatchObject({ vars: { REMOTE_ADDR: '127.0.0.1' }, scheme: 'https' });
    expect(apply({ ...base, HTTP_FORWARDED: 'garbage, for=203.0.113.9' }).vars.REMOTE_ADDR).toBe('203.0.113.9');
    expect(apply({ ...base, HTTP_FORWARDED: 'for="unterminated' }).vars.REMOTE_ADDR).toBe('127.0.0.1');
  });

  it('createEnviron applies it before it derives tsgi.url_scheme', () => {
    const environ = createEnviron({
      variables: { ...base, HTTP_X_FORWARDED_PROTO: 'https' },
      errors: { write: () => {} },
      forwarded: local,
    });
    expect(environ['tsgi.url_scheme']).toBe('https');
    const untouched = createEnviron({ variables: { ...base, HTTP_X_FORWARDED_PROTO: 'https' }, errors: { write: () => {} } });
    expect(untouched['tsgi.url_scheme']).toBe('http');
  });
});

describe('the HTTP server behind a proxy', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  async function serve(options: HttpServerOptions): Promise<{ port: number; seen: Environ[] }> {
    const seen: Environ[] = [];
    const app: App = (environ, start) => {
      seen.push(environ);
      start('200 OK', [['Content-Type', 'text/plain']]);
      return ['ok'];
    };
    const server = createHttpServer(app, { errors: { write: () => {} }, ...options });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => {
      server.closeAllConnections();
      server.close();
    });
    return { port: (server.address() as AddressInfo).port, seen };
  }

  async function get(port: number, headers: string): Promise<void> {
    const socket = connect(port, '127.0.0.1');
    socket.end(`GET / HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n${headers}\r\n`);
    socket.resume();
    await once(socket, 'close');
  }

  it('believes a proxy on loopback by default, and nobody with forwardedAllowIps ""', async () => {
    const trusting = await serve({});
    await get(trusting.port, 'X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\n');
    expect(trusting.seen[0]).toMatchObject({ REMOTE_ADDR: '203.0.113.5', HTTPS: 'on', 'tsgi.url_scheme': 'https' });
    const strict = await serve({ forwardedAllowIps: '' });
    await get(strict.port, 'X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\n');
    expect(strict.seen[0]).toMatchObject({ REMOTE_ADDR: '127.0.0.1', 'tsgi.url_scheme': 'http' });
    expect(strict.seen[0]?.HTTP_X_FORWARDED_FOR).toBe('203.0.113.5');
  });
});

describe('FastCGI and SCGI behind a web server that passes the fields on', () => {
  const servers: Array<{ close(): void; destroyConnections?(): void }> = [];
  afterEach(() => {
    for (const server of servers.splice(0)) {
      server.destroyConnections?.();
      server.close();
    }
  });

  const echo: App = (environ, start) => {
    start('200 OK', [['Content-Type', 'text/plain']]);
    return [`${environ.REMOTE_ADDR} ${environ['tsgi.url_scheme']} ${environ.SERVER_NAME}`];
  };
  const params = (remote: string): Record<string, string> => ({
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '',
    PATH_INFO: '/',
    QUERY_STRING: '',
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_NAME: 'backend',
    SERVER_PORT: '80',
    REMOTE_ADDR: remote,
    HTTP_X_FORWARDED_FOR: '198.51.100.7',
    HTTP_X_FORWARDED_PROTO: 'https',
    HTTP_X_FORWARDED_HOST: 'shop.example',
  });

  it('FastCGI: the web server\'s client is the peer that is trusted or not', async () => {
    const server = createFastCgiServer(echo, { errors: { write: () => {} } });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = await FastCgiClient.connect((server.address() as AddressInfo).port);
    try {
      const trusted = parseFastCgiResponse(await client.request({ id: 1, keepConn: true, params: params('127.0.0.1') }));
      expect(trusted.body.toString()).toBe('198.51.100.7 https shop.example');
      const other = parseFastCgiResponse(await client.request({ id: 2, params: params('203.0.113.1') }));
      expect(other.body.toString()).toBe('203.0.113.1 http backend');
    } finally {
      client.close();
    }
  });

  it('SCGI: the same, and forwardedAllowIps "" believes no one', async () => {
    for (const [allow, expected] of [
      [undefined, '198.51.100.7 https shop.example'],
      ['', '127.0.0.1 http backend'],
    ] as const) {
      const server = createScgiServer(echo, { errors: { write: () => {} }, ...(allow !== undefined ? { forwardedAllowIps: allow } : {}) });
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      socket.write(encodeScgiRequest(params('127.0.0.1')));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      await once(socket, 'close');
      const text = Buffer.concat(chunks).toString('latin1');
      expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe(expected);
    }
  });
});
