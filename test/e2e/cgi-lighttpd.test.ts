import { defineCgiSuite } from './cgi-suite.js';
import { checkBinary, LIGHTTPD_BIN, startLighttpd } from './servers.js';

// conf/lighttpd-cgi.conf: mod_cgi with streamed request and response bodies.
defineCgiSuite({
  title: 'CGI behind lighttpd (mod_cgi)',
  availability: checkBinary(LIGHTTPD_BIN),
  start: (cgiDir) => startLighttpd('lighttpd-cgi.conf', { cgiDir, label: 'lighttpd' }),
  quirks: {
    keepsContentLength: true,
    // server.http-parseopts defaults (url-normalize) rewrite the query string.
    normalizesQuery: true,
    // Scripts inherit lighttpd's stderr, which the harness captures.
    logsAfterDisconnect: true,
  },
});
