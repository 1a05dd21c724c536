import { fromNodeHandler } from 'tsgi';
import { createExpressHello } from './express-app.mjs';

/**
 * The "Express via tsgi FastCGI" row of bench/run.mjs: the Express hello world of express-app.mjs as a
 * tsgi app (`tsgi serve bench/apps/express-hello.ts --fastcgi 127.0.0.1:P`).
 */
export default fromNodeHandler(createExpressHello());
