#!/usr/bin/env node
// The Node floor of bench/run.mjs's CGI start-up figures: the least a Node CGI does, through the same
// `#!/usr/bin/env node` as a `tsgi build` script. It reads the two variables it answers with and writes the same
// response as tsgi's cgi-bin/hello.ts (with a Content-Length) in one writeSync to fd 1: no process.stdout, no
// stdin, no error handling, no environ. What it costs over `node -e 0` is Node running a file plus env's hop.
'use strict';
const { writeSync } = require('node:fs');

const body = `Hello from Node! You asked for ${(process.env.SCRIPT_NAME ?? '') + (process.env.PATH_INFO ?? '') || '/'}\n`;
writeSync(1, `Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
