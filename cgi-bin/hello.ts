// The same app `npm start` serves over HTTP (examples/hello.ts), run as a CGI script.
import { runWithCgi } from 'tsgi';
import app from '../examples/hello.js';

void runWithCgi(app);
