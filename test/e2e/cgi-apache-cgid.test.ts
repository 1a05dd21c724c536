import { defineCgiSuite } from './cgi-suite.js';
import { APACHE_BIN, checkBinary, startApache } from './servers.js';

// conf/apache-cgid.conf: mpm_event + mod_cgid (scripts forked by the cgid daemon, talking over ScriptSock).
defineCgiSuite({
  title: 'CGI behind Apache (mod_cgid, mpm_event)',
  availability: checkBinary(APACHE_BIN),
  start: (cgiDir) => startApache('apache-cgid.conf', { cgiDir, label: 'apache-cgid' }),
  quirks: {
    // Apache 2.4.71 drops the script's Content-Length and re-frames the body.
    keepsContentLength: false,
    normalizesQuery: false,
    // The cgid daemon points scripts' stderr at the error log file itself, so late lines still arrive.
    logsAfterDisconnect: true,
  },
});
