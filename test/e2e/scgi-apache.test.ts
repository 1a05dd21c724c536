import { defineGatewaySuite } from './gateway-suite.js';

// conf/apache-proxy-scgi.conf in front of `tsgi serve --scgi 127.0.0.1:PORT --mount /app`. mod_proxy_scgi
// sends the whole path as SCRIPT_NAME (the backend's --mount re-splits it), CONTENT_LENGTH "0" without a body,
// and drops the app's Content-Length (the body is re-framed as chunked).
defineGatewaySuite({ protocol: 'scgi', server: 'apache', quirks: { keepsContentLength: false, contentLengthWithoutBody: '0' } });
