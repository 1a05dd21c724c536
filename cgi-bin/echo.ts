import { runWithCgi, type App, type Header } from 'tsgi';

/**
 * Streams the request body back byte for byte, with the request's Content-Type (and its Content-Length when
 * the request had one). Nothing is buffered by the app: `tsgi.input` is returned as the body. Behind Apache,
 * which writes the whole request body before reading any output, this works because runWithCgi reads the body
 * ahead of the app (up to 16 MiB by default, `readAheadBytes`).
 */
const app: App = (environ, startResponse) => {
  const headers: Header[] = [['Content-Type', environ.CONTENT_TYPE ?? 'application/octet-stream']];
  if (environ.CONTENT_LENGTH !== undefined) headers.push(['Content-Length', environ.CONTENT_LENGTH]);
  startResponse('200 OK', headers);
  return environ['tsgi.input'];
};

void runWithCgi(app);
