import { defineCgiSuite } from './cgi-suite.js';
import { APACHE_BIN, checkBinary, startApache } from './servers.js';

// conf/apache-cgi.conf: mpm_prefork + mod_cgi, scripts under ScriptAlias /cgi-bin/.
defineCgiSuite({
  title: 'CGI behind Apache (mod_cgi, mpm_prefork)',
  availability: checkBinary(APACHE_BIN),
  start: (cgiDir) => startApache('apache-cgi.conf', { cgiDir, label: 'apache-cgi' }),
  quirks: {
    // Apache 2.4.71 drops the script's Content-Length and re-frames the body.
    keepsContentLength: false,
    normalizesQuery: false,
    // mod_cgi closes the script's stderr pipe with the request, so a line written after the client left is lost.
    logsAfterDisconnect: false,
  },
});
