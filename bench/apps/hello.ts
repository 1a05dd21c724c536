import type { App } from 'tsgi';

/**
 * The hello world of bench/fastcgi.mjs, served by tsgi over FastCGI and over HTTP. Every backend of that
 * bench answers these same 13 bytes as text/plain with a Content-Length.
 */
const BODY = new TextEncoder().encode('Hello, World!');

const app: App = (_environ, startResponse) => {
  startResponse('200 OK', [
    ['Content-Type', 'text/plain'],
    ['Content-Length', String(BODY.byteLength)],
  ]);
  return [BODY];
};

export default app;
