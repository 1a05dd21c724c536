import { join } from 'node:path';
import { defineFastCgiSuite, type FastCgiDeployment } from './fastcgi-suite.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  PROJECT_ROOT,
  PROXY_FCGI_MODULE,
  startApache,
  startBackend,
  findDescendants,
} from './servers.js';

const MOUNT = '/app';
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts');

/** `tsgi serve --fastcgi 127.0.0.1:PORT --mount /app`, then Apache (conf/apache-proxy-fcgi.conf) in front of it. */
async function deploy(): Promise<FastCgiDeployment> {
  const backend = await startBackend(APP, 'tcp', { mount: MOUNT });
  try {
    const server = await startApache('apache-proxy-fcgi.conf', {
      label: 'apache-proxy-fcgi',
      vars: { BACKEND_URL: `fcgi://${backend.address}`, MOUNT },
    });
    return {
      server,
      backendPids: async () => [backend.pid, ...(await findDescendants(backend.pid, 'cluster/worker'))],
      ...(backend.port ? { backendPort: backend.port } : {}),
      logs: async () => `${await server.errorLog()}${backend.output()}`,
      stop: async () => {
        await server.stop();
        await backend.stop();
      },
    };
  } catch (error) {
    await backend.stop();
    throw error;
  }
}

// Apache mod_proxy_fcgi (mpm_event): ProxyPass with enablereuse=on flushpackets=on. It sends the whole path
// in SCRIPT_NAME and no PATH_INFO: the backend's --mount repairs the split from REQUEST_URI.
defineFastCgiSuite({
  title: 'FastCGI behind Apache (mod_proxy_fcgi, mpm_event)',
  availability: allAvailable(
    checkBinary(APACHE_BIN),
    checkFiles([{ path: PROXY_FCGI_MODULE, package: 'apache2', executable: false }]),
    checkFastCgiBuild(),
  ),
  mount: MOUNT,
  start: deploy,
  quirks: {
    chunkedUploads: 'streamed',
    keepsConnections: true,
    // Apache 2.4.71 drops the backend's Content-Length and sends the body chunked.
    keepsContentLength: false,
    fullDuplex: true,
  },
});
