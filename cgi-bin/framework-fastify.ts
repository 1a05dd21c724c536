import { runWithCgi } from 'tsgi';
import app from '../examples/fastify.js';

/** examples/fastify.ts as a CGI script: `tsgi build cgi-bin/framework-fastify.ts -o app.cgi` bundles the framework in. */
void runWithCgi(app);
