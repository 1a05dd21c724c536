import { defineCgiSuite } from './cgi-suite.js';
import { checkBinary, LIGHTTPD_BIN, startLighttpd } from './servers.js';

// conf/lighttpd-cgi.conf: mod_cgi with streamed request and response bodies.
defineCgiSuite({
  title: 'CGI behind lighttpd (mod_cgi)',
  availability: checkBinary(LIGHTTPD_BIN),
  start: (cgiDir) => startLighttpd('lighttpd-cgi.conf', { cgiDir, label: 'lighttpd' }),
  quirks: {
    // With server.stream-request-body = 2 the script reads and writes at the same time: echo streams.
    bodyBeforeOutput: false,
    // server.http-parseopts defaults (url-normalize) rewrite the query string.
    keepsContentLength: true,
    normalizesQuery: true,
    // Scripts inherit lighttpd's stderr, which the harness captures.
    logsAfterDisconnect: true,
    conformanceSkips: {
      'CGI variables: method, protocol, gateway, tsgi keys':
        'lighttpd sends CONTENT_LENGTH=0 for a request without a body (conformance B3) and the core keeps it',
    },
  },
});
