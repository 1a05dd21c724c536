#!/usr/bin/env node
/**
 * npm run bench:fastcgi: the rows of bench/run.mjs that the FastCGI and bridges issues set goals for (tsgi over
 * FastCGI, SCGI, uwsgi and HTTP; Node http, Express both ways, node-fastcgi, PHP-FPM, nginx alone) plus the
 * streaming figures, without writing bench/RESULTS.md. Everything else is bench/run.mjs (see its --help).
 *
 *   node bench/fastcgi.mjs [--rows ID,ID,...] [--no-stream] [any option of bench/run.mjs]
 *
 * --rows picks rows (bench/run.mjs's --only); --no-stream leaves the streaming figures out.
 */
import { main } from './run.mjs';

const DEFAULT_ROWS = ['tsgi-fastcgi', 'tsgi-scgi', 'tsgi-uwsgi', 'tsgi-http', 'node-http', 'express-fastcgi', 'express-http', 'node-fastcgi', 'php-fpm', 'nginx'];
const args = process.argv.slice(2);
let rows = DEFAULT_ROWS;
let stream = true;
const rest = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--rows') rows = (args[++i] ?? '').split(',');
  else if (arg.startsWith('--rows=')) rows = arg.slice('--rows='.length).split(',');
  else if (arg === '--no-stream') stream = false;
  else rest.push(arg);
}
const only = [...rows, ...(stream ? ['stream'] : [])].filter(Boolean).join(',');
process.exitCode = await main(rest.includes('--help') || rest.includes('-h') ? rest : ['--only', only, ...rest], { prefix: 'bench/fastcgi' });
