import { runWithCgi } from 'tsgi';
import app from '../examples/hono.js';

/** examples/hono.ts as a CGI script: `tsgi build cgi-bin/framework-hono.ts -o app.cgi` bundles the framework in. */
void runWithCgi(app);
