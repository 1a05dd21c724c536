import { timingSafeEqual } from 'node:crypto';
import type { App } from 'tsgi';

/**
 * A FastCGI Authorizer (FastCGI 1.0 §6.3): the web server asks it about each request before serving it.
 * It checks HTTP Basic credentials against TSGI_AUTH_USERS ("user:password,user2:password2"; default
 * "alice:wonderland", for the demo only) and answers
 * - 200 with `Variable-X-User: NAME`: access granted; the web server passes X_USER=NAME on to whatever serves
 *   the request next (lighttpd: the responder's environment);
 * - 401 with `WWW-Authenticate: Basic realm="tsgi"`: the web server sends this response to the client as is.
 *
 * Serve it with `tsgi serve examples/fastcgi-authorizer.ts --fastcgi unix:/run/tsgi/auth.sock`, or let
 * lighttpd spawn it (`"mode" => "authorizer"`, see conf/lighttpd-fastcgi.conf). The web server sends an
 * Authorizer no CONTENT_LENGTH, PATH_INFO or SCRIPT_NAME; REQUEST_URI names the resource asked for.
 */
const REALM = 'tsgi';

function parseUsers(spec: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const entry of spec.split(',')) {
    const colon = entry.indexOf(':');
    if (colon > 0) users.set(entry.slice(0, colon), entry.slice(colon + 1));
  }
  return users;
}

const USERS = parseUsers(process.env.TSGI_AUTH_USERS ?? 'alice:wonderland');

/** Equal-time comparison, so the answer's timing does not tell how much of a password was right. */
function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The user named by a valid `Authorization: Basic ...` value, else null. */
function authenticate(authorization: string | undefined): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!match) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  const user = decoded.slice(0, colon);
  const expected = USERS.get(user);
  return expected !== undefined && sameText(decoded.slice(colon + 1), expected) ? user : null;
}

const authorizer: App = (environ, startResponse) => {
  const user = authenticate(environ.HTTP_AUTHORIZATION);
  if (user === null) {
    startResponse('401 Unauthorized', [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['WWW-Authenticate', `Basic realm="${REALM}", charset="UTF-8"`],
    ]);
    return ['401 Unauthorized\n'];
  }
  // Header values are byte strings (latin-1 policy): send the UTF-8 bytes of the name.
  startResponse('200 OK', [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Variable-X-User', Buffer.from(user, 'utf8').toString('latin1')],
  ]);
  return [];
};

export default authorizer;
