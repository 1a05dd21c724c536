/**
 * The Express hello world of bench/fastcgi.mjs, one app for two rows: "Express via tsgi FastCGI"
 * (bench/apps/express-hello.ts wraps it with fromNodeHandler) and "Express on node:http via proxy_pass"
 * (bench/apps/express-http-hello.mjs runs it with app.listen). Like every backend of that bench it answers the
 * 13 bytes "Hello, World!" as text/plain with a Content-Length; ETag and X-Powered-By are off so that the
 * response is no larger than the other rows'.
 */
import express from 'express';

/** Creates the Express app. */
export function createExpressHello() {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/', (_req, res) => {
    res.type('text/plain').send('Hello, World!');
  });
  return app;
}
