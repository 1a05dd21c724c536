import { defineGatewaySuite } from './gateway-suite.js';

// conf/apache-proxy-uwsgi.conf in front of `tsgi serve --uwsgi 127.0.0.1:PORT --mount /app`. mod_proxy_uwsgi
// already splits SCRIPT_NAME=/app and PATH_INFO=the rest, sends no CONTENT_LENGTH without a body, and needs
// the HTTP status line tsgi answers with.
defineGatewaySuite({ protocol: 'uwsgi', server: 'apache', quirks: { keepsContentLength: true, contentLengthWithoutBody: 'absent' } });
