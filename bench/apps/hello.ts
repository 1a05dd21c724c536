import type { App } from 'tsgi';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

/**
 * The tsgi backend of bench/run.mjs, served over FastCGI, SCGI, uwsgi and HTTP: "Hello, World!" at /, the
 * 64 KiB body of payload.mjs at /64k, both text/plain with a Content-Length (the same bytes as every other
 * backend of the bench).
 */
const HELLO = new Uint8Array(HELLO_BODY);
const BIG = new Uint8Array(BIG_BODY);
const BIG_LENGTH = String(BIG.byteLength);
const HELLO_LENGTH = String(HELLO.byteLength);

const app: App = (environ, startResponse) => {
  // Whatever split the web server made, the request path is SCRIPT_NAME + PATH_INFO.
  const big = `${environ.SCRIPT_NAME}${environ.PATH_INFO}`.endsWith(BIG_PATH);
  startResponse('200 OK', [
    ['Content-Type', 'text/plain'],
    ['Content-Length', big ? BIG_LENGTH : HELLO_LENGTH],
  ]);
  return [big ? BIG : HELLO];
};

export default app;
