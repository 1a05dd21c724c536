import { runWithCgi, type App } from 'tsgi';

/**
 * Fails on purpose, to show what the core does with an exception:
 * - by default it throws before startResponse: the core answers `Status: 500` with a plain page and writes the
 *   stack to stderr (the web server's error log), never "Premature end of script headers";
 * - `?after=1` declares a Content-Length of two chunks, sends the first and throws: the head is gone, so the
 *   core logs the error and exits non-zero. A server that passes the Content-Length on (lighttpd) leaves the
 *   client with fewer bytes than declared and closes the connection; Apache 2.4 drops a script's
 *   Content-Length and re-frames the body, so its client usually can't tell. CGI has no other way to say a
 *   body ended early.
 * `?id=` tags the error message so a test can find its own line in the log.
 */
const CHUNK = 'x'.repeat(1024);

const app: App = (environ, startResponse) => {
  const query = new URLSearchParams(environ.QUERY_STRING);
  const id = (query.get('id') ?? '-').replace(/[^\w-]/g, '');
  if (query.get('after') !== '1') throw new Error(`throws.cgi[${id}]: deliberate failure before the headers`);
  startResponse('200 OK', [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(CHUNK.length * 2)],
  ]);
  return (function* () {
    yield CHUNK;
    throw new Error(`throws.cgi[${id}]: deliberate failure after the first chunk`);
  })();
};

void runWithCgi(app);
