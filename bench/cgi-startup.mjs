#!/usr/bin/env node
/**
 * npm run bench:cgi-startup: only the CGI start-up figures of bench/run.mjs (tsgi's built CGI against
 * `node -e 0`, the least a Node CGI does (bench/apps/floor.cgi), a Python CGI and a shell CGI: wall time and
 * peak RSS; bench/lib/cgi-startup.mjs lists the variants), without writing bench/RESULTS.md.
 *
 *   node bench/cgi-startup.mjs [--runs N] [any option of bench/run.mjs]
 *
 * --runs N is bench/run.mjs's --cgi-runs N.
 */
import { main } from './run.mjs';

const args = process.argv.slice(2).flatMap((arg) => (arg === '--runs' ? ['--cgi-runs'] : arg.startsWith('--runs=') ? [`--cgi-runs=${arg.slice(7)}`] : [arg]));
process.exitCode = await main(args.includes('--help') || args.includes('-h') ? args : ['--only', 'cgi', ...args], { prefix: 'bench/cgi-startup' });
