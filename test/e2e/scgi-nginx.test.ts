import { defineGatewaySuite } from './gateway-suite.js';

// conf/nginx-scgi.conf in front of `tsgi serve --scgi 127.0.0.1:PORT --mount /app`. nginx sends no
// SCRIPT_NAME/PATH_INFO (the backend's --mount derives them from REQUEST_URI) and CONTENT_LENGTH "0" without
// a body.
defineGatewaySuite({ protocol: 'scgi', server: 'nginx', quirks: { keepsContentLength: true, contentLengthWithoutBody: '0' } });
