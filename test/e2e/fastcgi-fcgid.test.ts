import { join } from 'node:path';
import { defineFastCgiSuite, type FastCgiDeployment } from './fastcgi-suite.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  FCGID_MODULE,
  findDescendants,
  PROJECT_ROOT,
  startApache,
} from './servers.js';

const MOUNT = '/app';
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts');

/** Apache (conf/apache-fcgid.conf): mod_fcgid starts `tsgi serve` itself, with its socket on fd 0. */
async function deploy(): Promise<FastCgiDeployment> {
  const server = await startApache('apache-fcgid.conf', {
    label: 'apache-fcgid',
    vars: { PROJECT_ROOT, APP, MOUNT },
  });
  return {
    server,
    // mod_fcgid's process manager (a child of Apache's parent) starts the tsgi processes.
    backendPids: () => findDescendants(server.pid, APP),
    // The processes' stderr (tsgi's log and tsgi.errors alike) goes to Apache's error log.
    logs: () => server.errorLog(),
    stop: () => server.stop(),
  };
}

// Apache mod_fcgid: one request per process at a time, a connection per request, bodies read whole first.
defineFastCgiSuite({
  title: 'FastCGI behind Apache (mod_fcgid spawning tsgi on fd 0)',
  availability: allAvailable(
    checkBinary(APACHE_BIN),
    checkFiles([{ path: FCGID_MODULE, package: 'libapache2-mod-fcgid', executable: false }]),
    checkFastCgiBuild(),
  ),
  mount: MOUNT,
  start: deploy,
  quirks: {
    chunkedUploads: 'de-chunked',
    keepsConnections: false,
    // mod_fcgid writes the whole body to the app before it reads any of the answer: an app that answers
    // while it reads stalls once the answer fills the socket (until FcgidIOTimeout).
    fullDuplex: false,
    keepsContentLength: true,
  },
});
