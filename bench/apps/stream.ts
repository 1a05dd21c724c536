import { createHash } from 'node:crypto';
import type { App } from 'tsgi';
import { generatePattern } from './pattern.mjs';

/**
 * The streaming app of bench/run.mjs:
 *   POST .../upload              reads the whole body (chunked or with a length), answers
 *                                {"bytes": N, "sha256": "..."} as JSON
 *   GET  .../download?bytes=N    answers N deterministic bytes (bench/apps/pattern.mjs) with a Content-Length
 * Both work chunk by chunk, so the process holds one chunk at a time whatever N is.
 */
const MAX_DOWNLOAD_BYTES = 2 ** 40;

const app: App = async (environ, startResponse) => {
  const path = `${environ.SCRIPT_NAME}${environ.PATH_INFO}`;
  if (path.endsWith('/upload') && environ.REQUEST_METHOD === 'POST') {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of environ['tsgi.input']) {
      hash.update(chunk);
      bytes += chunk.byteLength;
    }
    startResponse('200 OK', [['Content-Type', 'application/json']]);
    return [`${JSON.stringify({ bytes, sha256: hash.digest('hex') })}\n`];
  }
  if (path.endsWith('/download') && environ.REQUEST_METHOD === 'GET') {
    const wanted = /(?:^|&)bytes=([0-9]{1,15})(?:&|$)/.exec(environ.QUERY_STRING)?.[1];
    const total = wanted === undefined ? Number.NaN : Number(wanted);
    if (!Number.isSafeInteger(total) || total > MAX_DOWNLOAD_BYTES) {
      startResponse('400 Bad Request', [['Content-Type', 'text/plain']]);
      return ['stream: expected ?bytes=N\n'];
    }
    startResponse('200 OK', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Length', String(total)],
    ]);
    return generatePattern(total);
  }
  startResponse('404 Not Found', [['Content-Type', 'text/plain']]);
  return [`stream: no route for ${environ.REQUEST_METHOD} ${path}\n`];
};

export default app;
