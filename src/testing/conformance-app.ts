import type { App, Environ, Header } from '../types.js';

/** The CGI variables and tsgi keys the `/env` route reports (byte strings, JSON-encoded). */
function describeEnviron(environ: Environ): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(environ)) {
    const value = environ[key];
    if (!key.includes('.') && typeof value === 'string') out[key] = value;
  }
  out['tsgi.version'] = environ['tsgi.version'];
  out['tsgi.url_scheme'] = environ['tsgi.url_scheme'];
  out['tsgi.input_terminated'] = environ['tsgi.input_terminated'];
  out['tsgi.multithread'] = environ['tsgi.multithread'];
  out['tsgi.multiprocess'] = environ['tsgi.multiprocess'];
  out['tsgi.run_once'] = environ['tsgi.run_once'];
  return out;
}

const TEXT: Header = ['Content-Type', 'text/plain; charset=utf-8'];

/** First path segment of PATH_INFO: the route. */
function routeOf(environ: Environ): string {
  return environ.PATH_INFO.split('/')[1] ?? '';
}

/**
 * The app every transport serves for the shared conformance suite. It routes on the first segment of
 * PATH_INFO, so it works at any mount point (SCRIPT_NAME) and as a CGI script behind any web server.
 */
export const conformanceApp: App = async (environ, startResponse) => {
  const route = routeOf(environ);
  const query = new URLSearchParams(environ.QUERY_STRING);
  switch (route) {
    case 'hello':
      startResponse('200 OK', [TEXT]);
      return ['Hello, tsgi'];
    case 'env':
      startResponse('200 OK', [['Content-Type', 'application/json']]);
      return [JSON.stringify(describeEnviron(environ))];
    case 'echo': {
      const type = environ.CONTENT_TYPE ?? 'application/octet-stream';
      startResponse('200 OK', [['Content-Type', type]]);
      return environ['tsgi.input'];
    }
    case 'read': {
      // Reads the body with read(n) to check chunked reads never pass CONTENT_LENGTH.
      const size = Number(query.get('n') ?? '3');
      const input = environ['tsgi.input'];
      const sizes: number[] = [];
      let total = 0;
      for (;;) {
        const part = await input.read(size);
        if (part.length === 0) break;
        sizes.push(part.length);
        total += part.length;
      }
      startResponse('200 OK', [['Content-Type', 'application/json']]);
      return [JSON.stringify({ total, sizes: sizes.slice(0, 10), reads: sizes.length })];
    }
    case 'status': {
      const code = environ.PATH_INFO.split('/')[2] ?? '200';
      const status = /^[1-5][0-9]{2}$/.test(code) ? code : '400';
      const bodyless = status === '204' || status === '304';
      startResponse(`${status} Custom Reason`, bodyless ? [] : [TEXT]);
      return bodyless ? [] : [`status ${status}\n`];
    }
    case 'redirect':
      startResponse('302 Found', [
        ['Location', 'http://example.test/target'],
        TEXT,
      ]);
      return ['see http://example.test/target\n'];
    case 'cookies':
      startResponse('200 OK', [TEXT, ['Set-Cookie', 'a=1; Path=/'], ['Set-Cookie', 'b=2; Path=/; HttpOnly']]);
      return [environ.HTTP_COOKIE ?? ''];
    case 'empty':
      startResponse('200 OK', [TEXT]);
      return [];
    case 'chunks':
      startResponse('200 OK', [TEXT]);
      return (async function* () {
        for (let i = 0; i < 5; i++) {
          yield `chunk${i};`;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
    case 'write': {
      const write = startResponse('200 OK', [TEXT]);
      await write('written;');
      return ['returned'];
    }
    case 'utf8':
      startResponse('200 OK', [TEXT]);
      return ['caf\u00e9 \u20ac'];
    case 'binary': {
      const bytes = new Uint8Array(256);
      for (let i = 0; i < 256; i++) bytes[i] = i;
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return [bytes];
    }
    case 'throw':
      throw new Error('conformance: thrown on purpose');
    case 'exc': {
      startResponse('200 OK', [TEXT]);
      try {
        throw new Error('conformance: recovered on purpose');
      } catch (error) {
        startResponse('500 Internal Server Error', [TEXT], error);
        return ['recovered'];
      }
    }
    case 'big': {
      const size = Number(query.get('bytes') ?? '1048576');
      startResponse('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', String(size)]]);
      return (function* () {
        const block = new Uint8Array(65536).fill(0x61);
        for (let sent = 0; sent < size; sent += block.length) yield block.subarray(0, Math.min(block.length, size - sent));
      })();
    }
    default:
      startResponse('404 Not Found', [TEXT]);
      return [`no route ${route}\n`];
  }
};
