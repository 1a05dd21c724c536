import { runWithCgi, type App, STATUS_TEXT } from 'tsgi';

/**
 * Answers with the status named by PATH_INFO: `/cgi-bin/status.cgi/404` -> "404 Not Found" with a short
 * text body (none for 204 and 304, which can't have one). Any NNN from 200 to 599 works; without a code, or
 * with something else, the answer is 200 with a usage line.
 */
const app: App = (environ, startResponse) => {
  const match = /^\/([2-5][0-9][0-9])\/?$/.exec(environ.PATH_INFO);
  if (!match) {
    startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
    return ['usage: /cgi-bin/status.cgi/NNN answers with status NNN (200-599)\n'];
  }
  const code = Number(match[1]);
  const reason = STATUS_TEXT[code] ?? 'Unknown';
  if (code === 204 || code === 304) {
    startResponse(`${code} ${reason}`, []);
    return [];
  }
  startResponse(`${code} ${reason}`, [['Content-Type', 'text/plain; charset=utf-8']]);
  return [`${code} ${reason}\n`];
};

void runWithCgi(app);
