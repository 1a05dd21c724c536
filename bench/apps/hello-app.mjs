/**
 * The JavaScript twin of bench/apps/hello.ts (same bytes, same logic), for the rows of bench/run.mjs that
 * load a tsgi app without `tsgi serve` (tsgi-http-inprocess.mjs: no TypeScript loader in the process).
 */
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

const HELLO = new Uint8Array(HELLO_BODY);
const BIG = new Uint8Array(BIG_BODY);
const BIG_LENGTH = String(BIG.byteLength);
const HELLO_LENGTH = String(HELLO.byteLength);

/** @type {import('tsgi').App} */
export default function app(environ, startResponse) {
  const big = `${environ.SCRIPT_NAME}${environ.PATH_INFO}`.endsWith(BIG_PATH);
  startResponse('200 OK', [
    ['Content-Type', 'text/plain'],
    ['Content-Length', big ? BIG_LENGTH : HELLO_LENGTH],
  ]);
  return [big ? BIG : HELLO];
}
