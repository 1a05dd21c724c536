import { defineGatewaySuite } from './gateway-suite.js';

// conf/nginx-uwsgi.conf in front of `tsgi serve --uwsgi 127.0.0.1:PORT --mount /app`. nginx sends
// PATH_INFO=$document_uri and no SCRIPT_NAME (the backend's --mount re-splits them), CONTENT_LENGTH "" without
// a body.
defineGatewaySuite({ protocol: 'uwsgi', server: 'nginx', quirks: { keepsContentLength: true, contentLengthWithoutBody: 'absent' } });
