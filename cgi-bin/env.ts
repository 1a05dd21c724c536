import { runWithCgi, type App } from 'tsgi';

/**
 * Dumps the request's environ as JSON: every CGI key (the keys without a ".", so the CGI meta-variables, the
 * HTTP_* headers and whatever else the web server put in the environment, such as PATH) plus three tsgi.* keys.
 * Values are byte strings (one char per byte, the tsgi byte policy): a client decodes a UTF-8 PATH_INFO with
 * `Buffer.from(value, 'latin1').toString('utf8')`. JSON.stringify keeps every char U+0000..U+00FF as is, so the
 * mapping back to bytes is exact.
 */
const app: App = (environ, startResponse) => {
  const dump: Record<string, unknown> = {};
  for (const key of Object.keys(environ).sort()) {
    if (!key.includes('.')) dump[key] = environ[key];
  }
  dump['tsgi.url_scheme'] = environ['tsgi.url_scheme'];
  dump['tsgi.run_once'] = environ['tsgi.run_once'];
  dump['tsgi.multiprocess'] = environ['tsgi.multiprocess'];
  startResponse('200 OK', [
    ['Content-Type', 'application/json; charset=utf-8'],
    ['Cache-Control', 'no-store'],
  ]);
  return [`${JSON.stringify(dump, null, 2)}\n`];
};

void runWithCgi(app);
