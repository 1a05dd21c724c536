import { runWithCgi } from 'tsgi';
import app from '../examples/koa.js';

/** examples/koa.ts as a CGI script: `tsgi build cgi-bin/framework-koa.ts -o app.cgi` bundles the framework in. */
void runWithCgi(app);
