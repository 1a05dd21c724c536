import { runWithCgi, type App } from 'tsgi';

/**
 * Sets two cookies with two separate Set-Cookie headers (they can't be joined with a comma, RFC 6265 §3) and
 * echoes the request's Cookie header (HTTP_COOKIE; several Cookie lines arrive joined with "; ").
 */
const app: App = (environ, startResponse) => {
  startResponse('200 OK', [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Set-Cookie', 'first=1; Path=/; HttpOnly'],
    // An Expires date holds a comma: joining the two headers with ", " would make them ambiguous.
    ['Set-Cookie', 'second=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax'],
  ]);
  return [`cookie: ${environ.HTTP_COOKIE ?? ''}\n`];
};

void runWithCgi(app);
