import { runWithCgi, type App, STATUS_TEXT } from 'tsgi';

/**
 * Redirects: 302 to `?to=` (default /cgi-bin/hello.cgi); `?status=301` (or 303, 307, 308) picks another
 * code. The status is always explicit, so web servers pass the redirect to the client instead of following
 * a local `Location:` themselves (RFC 3875 §6.2.2).
 */
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

const app: App = (environ, startResponse) => {
  const query = new URLSearchParams(environ.QUERY_STRING);
  const requested = Number(query.get('status') ?? '302');
  const code = REDIRECT_CODES.has(requested) ? requested : 302;
  const target = query.get('to') ?? '/cgi-bin/hello.cgi';
  // A header value must not carry CR/LF; the core refuses them, this just keeps the example's answer tidy.
  const location = target.replace(/[\r\n]/g, '');
  startResponse(`${code} ${STATUS_TEXT[code] ?? 'Redirect'}`, [
    ['Location', location],
    ['Content-Type', 'text/plain; charset=utf-8'],
  ]);
  return [`Redirecting to ${location}\n`];
};

void runWithCgi(app);
