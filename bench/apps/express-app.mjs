/**
 * The Express app of bench/run.mjs, one app for two rows: "Express via tsgi FastCGI"
 * (bench/apps/express-hello.ts wraps it with fromNodeHandler) and "Express on node:http via proxy"
 * (bench/apps/express-http-hello.mjs runs it with app.listen). Like every backend of the bench it answers
 * "Hello, World!" at / and the 64 KiB body of payload.mjs at /64k, text/plain with a Content-Length; ETag
 * and X-Powered-By are off so that the responses are no larger than the other rows'.
 */
import express from 'express';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

/** Creates the Express app. */
export function createExpressHello() {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/', (_req, res) => {
    res.type('text/plain').send(HELLO_BODY);
  });
  app.get(BIG_PATH, (_req, res) => {
    res.type('text/plain').send(BIG_BODY);
  });
  return app;
}
