import { runWithCgi } from 'tsgi';
import app from '../examples/express.js';

/** examples/express.ts as a CGI script: `tsgi build cgi-bin/framework-express.ts -o app.cgi` bundles the framework in. */
void runWithCgi(app);
