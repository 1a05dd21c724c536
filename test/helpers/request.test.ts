import { describe, expect, it } from 'vitest';
import { RequestError } from '../../src/errors.js';
import { parseCookies } from '../../src/helpers/cookies.js';
import { Request } from '../../src/helpers/request.js';
import { buildEnviron } from '../middleware/helpers.js';

const BOUNDARY = '----tsgi-boundary-7MA4YWxkTrZu0gW';

/** Builds a multipart/form-data body by hand: text fields and file parts of raw bytes. */
function buildMultipart(parts: Array<{ name: string; value: string } | { name: string; filename: string; type: string; bytes: Uint8Array }>): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) {
    let head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if ('filename' in part) head += `; filename="${part.filename}"\r\nContent-Type: ${part.type}`;
    pieces.push(Buffer.from(`${head}\r\n\r\n`, 'utf8'));
    pieces.push('bytes' in part ? Buffer.from(part.bytes) : Buffer.from(part.value, 'utf8'));
    pieces.push(Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(pieces);
}

function postRequest(body: Uint8Array | string, contentType: string, options = {}): Request {
  return new Request(buildEnviron('/upload', { REQUEST_METHOD: 'POST', CONTENT_TYPE: contentType }, body), options);
}

describe('Request: request line and URL', () => {
  it('reads method, scheme, host, port, paths and query', () => {
    const request = new Request(
      buildEnviron('/api/caf%C3%A9%20au%20lait?q=%C3%A9t%C3%A9&x=1&x=2', { SCRIPT_NAME: '/app', HTTP_HOST: 'Example.com:8443', 'tsgi.url_scheme': 'https' }),
    );
    expect(request.method).toBe('GET');
    expect(request.scheme).toBe('https');
    expect(request.host).toBe('example.com:8443');
    expect(request.hostname).toBe('example.com');
    expect(request.port).toBe(8443);
    expect(request.scriptName).toBe('/app');
    expect(request.pathInfo).toBe('/api/café au lait');
    expect(request.path).toBe('/app/api/café au lait');
    expect(request.query.get('q')).toBe('été');
    expect(request.query.getAll('x')).toEqual(['1', '2']);
    expect(request.url.href).toBe('https://example.com:8443/app/api/caf%C3%A9%20au%20lait?q=%C3%A9t%C3%A9&x=1&x=2');
    expect(request.href).toBe(request.url.href);
  });

  it('decodes a UTF-8 PATH_INFO held as latin-1 chars (the byte policy)', () => {
    const raw = Buffer.from('/ünïcode/日本', 'utf8').toString('latin1');
    const request = new Request(buildEnviron('/', { PATH_INFO: raw }));
    expect(request.environ.PATH_INFO).not.toBe('/ünïcode/日本');
    expect(request.pathInfo).toBe('/ünïcode/日本');
    expect(request.url.pathname).toBe('/%C3%BCn%C3%AFcode/%E6%97%A5%E6%9C%AC');
  });

  it('re-encodes "?", "#" and "%" that were decoded into PATH_INFO', () => {
    const request = new Request(buildEnviron('/', { PATH_INFO: '/a?b#c%d' }));
    expect(request.url.pathname).toBe('/a%3Fb%23c%25d');
    expect(request.url.search).toBe('');
  });

  it('falls back to SERVER_NAME and SERVER_PORT without a Host header', () => {
    const environ = buildEnviron('/x', { SERVER_NAME: 'srv.local', SERVER_PORT: '80' });
    delete environ.HTTP_HOST;
    const request = new Request(environ);
    expect(request.host).toBe('srv.local');
    expect(request.port).toBe(80);
    expect(request.href).toBe('http://srv.local/x');
    const other = buildEnviron('/', { SERVER_PORT: '8000' });
    delete other.HTTP_HOST;
    expect(new Request(other).host).toBe('localhost:8000');
  });

  it('gives the scheme default port when the Host header has none', () => {
    expect(new Request(buildEnviron('/', { HTTP_HOST: 'a.example', 'tsgi.url_scheme': 'https' })).port).toBe(443);
  });

  it('exposes remoteAddr, signal and body', () => {
    const environ = buildEnviron('/');
    const request = new Request(environ);
    expect(request.remoteAddr).toBe('127.0.0.1');
    expect(request.signal).toBe(environ['tsgi.signal']);
    expect(request.body).toBe(environ['tsgi.input']);
  });
});

describe('Request: headers and cookies', () => {
  it('maps HTTP_* keys and CONTENT_* to header names', () => {
    const request = new Request(
      buildEnviron('/', { HTTP_X_FORWARDED_FOR: '10.0.0.1', HTTP_ACCEPT: 'text/html', CONTENT_TYPE: 'text/plain', CONTENT_LENGTH: '3' }),
    );
    expect(request.headers.get('X-Forwarded-For')).toBe('10.0.0.1');
    expect(request.headers.get('content-type')).toBe('text/plain');
    expect(request.headers.get('Content-Length')).toBe('3');
    expect(request.headers.has('accept')).toBe(true);
    expect(request.headers.get('missing')).toBeNull();
    expect([...request.headers.keys()]).toEqual(['accept', 'content-length', 'content-type', 'host', 'x-forwarded-for']);
    expect(request.contentLength).toBe(3);
  });

  it('parses cookies: first wins, quotes removed, percent-decoded, junk skipped', () => {
    const request = new Request(buildEnviron('/', { HTTP_COOKIE: 'sid=abc; theme="dark"; sid=other; name=J%C3%B6rg; bad%=%zz; novalue; =x; empty=' }));
    expect({ ...request.cookies }).toEqual({ sid: 'abc', theme: 'dark', name: 'Jörg', 'bad%': '%zz', empty: '' });
    expect(Object.getPrototypeOf(request.cookies)).toBeNull();
  });

  it('keeps a cookie named __proto__ as data', () => {
    const cookies = parseCookies('__proto__=x; a=1');
    expect(cookies['__proto__']).toBe('x');
    expect(cookies.a).toBe('1');
  });

  it('decodes raw UTF-8 cookie bytes under the byte policy', () => {
    expect(parseCookies(Buffer.from('n=Zoë', 'utf8').toString('latin1')).n).toBe('Zoë');
  });
});

describe('Request: body', () => {
  it('reads bytes once and shares them with text() and json()', async () => {
    const request = postRequest('{"a":[1,"é"]}', 'application/json');
    expect(await request.json()).toEqual({ a: [1, 'é'] });
    expect(await request.text()).toBe('{"a":[1,"é"]}');
    expect((await request.bytes()).length).toBe(Buffer.byteLength('{"a":[1,"é"]}'));
    expect(await request.bytes()).toBe(await request.bytes());
  });

  it('rejects bad JSON with RequestError 400', async () => {
    const error = await postRequest('{"a":', 'application/json').json().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).status).toBe(400);
    expect((error as RequestError).message).toMatch(/^request: body is not valid JSON \(/);
    const empty = await new Request(buildEnviron('/')).json().catch((caught: unknown) => caught);
    expect((empty as RequestError).message).toBe('request: body is not valid JSON (empty)');
  });

  it('rejects a body over the limit with 413, by CONTENT_LENGTH or by bytes received', async () => {
    const declared = await postRequest('x'.repeat(11), 'text/plain', { maxBodyBytes: 10 }).text().catch((caught: unknown) => caught);
    expect((declared as RequestError).status).toBe(413);
    expect((declared as RequestError).message).toBe('request: body exceeds maxBodyBytes (11)');
    const environ = buildEnviron('/', { REQUEST_METHOD: 'POST', 'tsgi.input_terminated': true }, 'y'.repeat(20));
    delete environ.CONTENT_LENGTH;
    const streamed = await new Request(environ, { maxBodyBytes: 10 }).bytes().catch((caught: unknown) => caught);
    expect((streamed as RequestError).status).toBe(413);
  });

  it('decodes text with the declared charset', async () => {
    const request = postRequest(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'text/plain; charset=ISO-8859-1');
    expect(await request.text()).toBe('café');
  });

  it('parses application/x-www-form-urlencoded into FormData', async () => {
    const form = await postRequest('a=1&b=h%C3%A9llo+w&a=2', 'application/x-www-form-urlencoded; charset=utf-8').formData();
    expect(form.getAll('a')).toEqual(['1', '2']);
    expect(form.get('b')).toBe('héllo w');
  });

  it('parses multipart/form-data with a binary file part reproduced exactly', async () => {
    const bytes = new Uint8Array(3000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 13) % 256;
    bytes.set([0x0d, 0x0a, 0x2d, 0x2d], 100);
    const body = buildMultipart([
      { name: 'title', value: 'Photo été' },
      { name: 'file', filename: 'C:\\tmp\\photo.bin', type: 'application/octet-stream', bytes },
      { name: 'note', value: 'after' },
    ]);
    const request = postRequest(body, `multipart/form-data; boundary=${BOUNDARY}`);
    const form = await request.formData();
    const names: string[] = [];
    form.forEach((_value, name) => names.push(name));
    expect(names).toEqual(['title', 'file', 'note']);
    expect(form.get('title')).toBe('Photo été');
    const file = form.get('file') as File;
    expect(file).toBeInstanceOf(File);
    expect(file.name).toBe('photo.bin');
    expect(file.type).toBe('application/octet-stream');
    expect(Buffer.from(await file.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
    expect(await request.formData()).toBe(form);
    await expect(request.bytes()).rejects.toThrow('request: body already consumed by formData() (multipart)');
  });

  it('parses multipart from the buffered bytes when bytes() came first', async () => {
    const body = buildMultipart([{ name: 'f', filename: 'a.txt', type: 'text/plain', bytes: Buffer.from('hello') }]);
    const request = postRequest(body, `multipart/form-data; boundary=${BOUNDARY}`);
    expect((await request.bytes()).length).toBe(body.length);
    expect(await ((await request.formData()).get('f') as File).text()).toBe('hello');
  });

  it('rejects a file over maxFileBytes with 413 and a truncated multipart body with 400', async () => {
    const big = buildMultipart([{ name: 'f', filename: 'big.bin', type: 'application/octet-stream', bytes: new Uint8Array(100) }]);
    const tooBig = await postRequest(big, `multipart/form-data; boundary=${BOUNDARY}`, { maxFileBytes: 50 }).formData().catch((caught: unknown) => caught);
    expect((tooBig as RequestError).status).toBe(413);
    expect((tooBig as RequestError).message).toBe('request: form exceeds maxFileBytes (50)');
    const cut = big.subarray(0, big.length - 20);
    const truncated = await postRequest(cut, `multipart/form-data; boundary=${BOUNDARY}`).formData().catch((caught: unknown) => caught);
    expect((truncated as RequestError).status).toBe(400);
    expect((truncated as RequestError).message).toMatch(/^request: malformed multipart body/);
  });

  it('rejects a multipart body over maxMultipartBytes and a missing boundary', async () => {
    const body = buildMultipart([{ name: 'a', value: 'x'.repeat(200) }]);
    const over = await postRequest(body, `multipart/form-data; boundary=${BOUNDARY}`, { maxMultipartBytes: 100 }).formData().catch((caught: unknown) => caught);
    expect((over as RequestError).status).toBe(413);
    const noBoundary = await postRequest(body, 'multipart/form-data').formData().catch((caught: unknown) => caught);
    expect((noBoundary as RequestError).status).toBe(400);
  });

  it('rejects formData() for other content types with 415', async () => {
    const error = await postRequest('{}', 'application/json').formData().catch((caught: unknown) => caught);
    expect((error as RequestError).status).toBe(415);
  });
});
