import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { serializeCookie } from '../../src/helpers/cookies.js';
import { Response, ResponseHeaders } from '../../src/helpers/response.js';
import { formatStatus, getStatusText } from '../../src/helpers/status-text.js';
import { compose } from '../../src/middleware/compose.js';
import type { App, Chunk } from '../../src/types.js';
import { buildEnviron, headerOf, runApp } from '../middleware/helpers.js';

describe('Response as an App', () => {
  it('is callable and assignable to App', async () => {
    const app: App = Response.json({ ok: true, n: 1 });
    const result = await runApp(app);
    expect(result.status).toBe('200 OK');
    expect(result.headers).toEqual([
      ['Content-Type', 'application/json'],
      ['Content-Length', '17'],
    ]);
    expect(result.text).toBe('{"ok":true,"n":1}');
    expect(app).toBeInstanceOf(Response);
    expect(typeof app.call).toBe('function');
  });

  it('is recognised as an app by compose', async () => {
    const upper = (inner: App): App => (environ, startResponse) => inner(environ, (status, headers) => startResponse(status.replace('OK', 'Wrapped'), headers));
    const result = await runApp(compose(upper, Response.text('hi')));
    expect(result.status).toBe('200 Wrapped');
    expect(result.text).toBe('hi');
  });

  it('fills the reason from the table, or uses statusText', async () => {
    expect((await runApp(new Response('x', { status: 418 }))).status).toBe("418 I'm a teapot");
    expect((await runApp(new Response('x', { status: 299 }))).status).toBe('299 Unknown');
    expect((await runApp(new Response('x', { status: 200, statusText: 'Fine' }))).status).toBe('200 Fine');
    expect(() => new Response('x', { status: 99 })).toThrow(AppError);
    expect(() => new Response('x', { status: 200.5 })).toThrow('response: status must be an integer in 100..999 (200.5)');
  });

  it('encodes text as UTF-8 and counts bytes, not chars', async () => {
    const result = await runApp(Response.text('héllo €'));
    expect(headerOf(result, 'Content-Length')).toBe(String(Buffer.byteLength('héllo €')));
    expect(headerOf(result, 'Content-Type')).toBe('text/plain; charset=utf-8');
    expect(result.text).toBe('héllo €');
  });

  it('sends bytes unchanged as application/octet-stream', async () => {
    const bytes = new Uint8Array([0, 255, 10, 13]);
    const result = await runApp(new Response(bytes));
    expect(headerOf(result, 'Content-Type')).toBe('application/octet-stream');
    expect(headerOf(result, 'Content-Length')).toBe('4');
    expect([...result.body]).toEqual([0, 255, 10, 13]);
  });

  it('streams sync and async iterables without a Content-Length, passing close() on', async () => {
    let closed = 0;
    const body = Object.assign(['a', 'b'] as Chunk[], { close: () => void closed++ });
    const result = await runApp(new Response(body, { headers: { 'Content-Type': 'text/csv' } }));
    expect(result.text).toBe('ab');
    expect(headerOf(result, 'Content-Length')).toBeUndefined();
    expect(closed).toBe(1);
    const stream = new Response((async function* () {
      yield 'x';
      yield new Uint8Array([0x79]);
    })());
    expect((await runApp(stream)).text).toBe('xy');
  });

  it('keeps headers but sends no body to HEAD, still closing an iterable body', async () => {
    let closed = 0;
    const body = Object.assign(['abc'] as Chunk[], { close: () => void closed++ });
    const head = buildEnviron('/', { REQUEST_METHOD: 'HEAD' });
    const text = await runApp(Response.text('hello'), head);
    expect(text.body.length).toBe(0);
    expect(headerOf(text, 'Content-Length')).toBe('5');
    await runApp(new Response(body), buildEnviron('/', { REQUEST_METHOD: 'HEAD' }));
    expect(closed).toBe(1);
  });

  it('drops Content-Type, Content-Length and the body on 204 and 304', async () => {
    const result = await runApp(Response.text('ignored', { status: 204 }));
    expect(result.status).toBe('204 No Content');
    expect(result.headers).toEqual([]);
    expect(result.body.length).toBe(0);
  });

  it('redirects with Location and a permitted status', async () => {
    const result = await runApp(Response.redirect('/next?a=1'));
    expect(result.status).toBe('302 Found');
    expect(headerOf(result, 'Location')).toBe('/next?a=1');
    expect(headerOf(result, 'Content-Length')).toBe('0');
    expect((await runApp(Response.redirect(new URL('https://example.com/x y'), 308))).headers[0]).toEqual(['Location', 'https://example.com/x%20y']);
    expect(headerOf(await runApp(Response.redirect('/café')), 'Location')).toBe('/caf%C3%A9');
    expect(() => Response.redirect('/x', 200)).toThrow('response: redirect status must be 300-303, 307 or 308 (200)');
    expect(() => Response.redirect('/x\r\nSet-Cookie: a=1')).not.toThrow();
    expect(headerOf(await runApp(Response.redirect('/x\r\nSet-Cookie: a=1')), 'Location')).toBe('/x%0D%0ASet-Cookie:%20a=1');
  });

  it('lets init headers override the default Content-Type', async () => {
    const result = await runApp(Response.json([1], { status: 201, headers: [['content-type', 'application/vnd.api+json']] }));
    expect(result.status).toBe('201 Created');
    expect(result.headers).toEqual([
      ['content-type', 'application/vnd.api+json'],
      ['Content-Length', '3'],
    ]);
    expect(() => Response.json(undefined)).toThrow('response: value does not serialize to JSON (undefined)');
  });

  it('reflects changes made after construction', async () => {
    const response = Response.html('<p>hi</p>');
    response.status = 202;
    response.headers.set('X-Id', '7');
    response.body = '<p>changed</p>';
    const result = await runApp(response);
    expect(result.status).toBe('202 Accepted');
    expect(headerOf(result, 'X-Id')).toBe('7');
    expect(headerOf(result, 'Content-Type')).toBe('text/html; charset=utf-8');
    expect(result.text).toBe('<p>changed</p>');
  });
});

describe('ResponseHeaders', () => {
  it('appends, sets, gets case-insensitively and keeps Set-Cookie separate', () => {
    const headers = new ResponseHeaders({ 'X-A': '1', 'Set-Cookie': ['a=1', 'b=2'] });
    headers.append('x-a', '2');
    expect(headers.get('X-A')).toBe('1, 2');
    expect(headers.getAll('set-cookie')).toEqual(['a=1', 'b=2']);
    headers.set('X-A', '3');
    expect(headers.toArray()).toEqual([
      ['X-A', '3'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
    expect(headers.delete('set-cookie')).toBe(true);
    expect(headers.has('Set-Cookie')).toBe(false);
    expect(headers.get('missing')).toBeNull();
  });

  it('refuses response splitting, bad names and Status', () => {
    const headers = new ResponseHeaders();
    expect(() => headers.append('X-A', 'a\r\nInjected: 1')).toThrow(AppError);
    expect(() => headers.set('X-A', 'a\nb')).toThrow(/control character/);
    expect(() => headers.append('Bad Name', 'x')).toThrow('response: header name is not a token ("Bad Name")');
    expect(() => headers.append('Status', '200')).toThrow(/"Status" is not a header/);
    expect(() => headers.append('X-Emoji', '😀')).toThrow(/above U\+00FF/);
    expect(headers.toArray()).toEqual([]);
  });
});

describe('cookies', () => {
  it('serializes every attribute', () => {
    const expires = new Date(Date.UTC(2030, 0, 2, 3, 4, 5));
    expect(
      serializeCookie('sid', 'abc123', { maxAge: 60, expires, domain: 'example.com', path: '/', secure: true, httpOnly: true, sameSite: 'lax' }),
    ).toBe('sid=abc123; Max-Age=60; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax');
  });

  it('adds one Set-Cookie per call', async () => {
    const response = Response.text('ok').setCookie('a', '1').setCookie('b', '2', { path: '/x' }).deleteCookie('old');
    const result = await runApp(response);
    expect(result.headers.filter(([name]) => name === 'Set-Cookie').map(([, value]) => value)).toEqual([
      'a=1',
      'b=2; Path=/x',
      'old=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    ]);
  });

  it.each([
    ['name', 'bad name', 'v', {}],
    ['value with ;', 'a', 'x;y', {}],
    ['value with CR/LF', 'a', 'x\r\ny', {}],
    ['value with space', 'a', 'x y', {}],
    ['path with ;', 'a', 'v', { path: '/; Domain=evil' }],
    ['domain with LF', 'a', 'v', { domain: 'a\nb' }],
    ['fractional maxAge', 'a', 'v', { maxAge: 1.5 }],
    ['invalid expires', 'a', 'v', { expires: new Date('nope') }],
    ['SameSite=None without secure', 'a', 'v', { sameSite: 'None' }],
    ['__Host- with a domain', '__Host-a', 'v', { secure: true, path: '/', domain: 'x.com' }],
    ['__Secure- without secure', '__Secure-a', 'v', {}],
  ] as const)('refuses a %s', (_label, name, value, options) => {
    expect(() => serializeCookie(name, value, options)).toThrow(AppError);
  });

  it('accepts a quoted value', () => {
    expect(serializeCookie('a', '"quoted"')).toBe('a="quoted"');
  });
});

describe('status text', () => {
  it('formats status lines', () => {
    expect(formatStatus(404)).toBe('404 Not Found');
    expect(formatStatus(599)).toBe('599 Unknown');
    expect(formatStatus(200, 'Fine')).toBe('200 Fine');
    expect(getStatusText(299, 'Whatever')).toBe('Whatever');
  });
});
