import { join } from 'node:path';
import { defineFastCgiSuite, type FastCgiDeployment } from './fastcgi-suite.js';
import {
  allAvailable,
  checkBinary,
  checkFastCgiBuild,
  NGINX_BIN,
  PROJECT_ROOT,
  startBackend,
  startNginx,
  type BackendTransport,
  findDescendants,
} from './servers.js';

const MOUNT = '/app';
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts');

/** `tsgi serve --fastcgi` on `transport`, then nginx (conf/nginx-fastcgi.conf) in front of it. */
async function deploy(transport: BackendTransport): Promise<FastCgiDeployment> {
  const backend = await startBackend(APP, transport, { mount: MOUNT });
  try {
    const server = await startNginx('nginx-fastcgi.conf', {
      label: `nginx-${transport}`,
      vars: { BACKEND: backend.nginxAddress, MOUNT },
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

// nginx: upstream keepalive + fastcgi_keep_conn on, request and response buffering off.
for (const transport of ['tcp', 'unix'] as const) {
  defineFastCgiSuite({
    title: `FastCGI behind nginx (backend on ${transport === 'tcp' ? 'TCP' : 'a unix socket'})`,
    availability: allAvailable(checkBinary(NGINX_BIN), checkFastCgiBuild()),
    mount: MOUNT,
    start: () => deploy(transport),
    quirks: {
      chunkedUploads: 'streamed',
      keepsConnections: true,
      keepsContentLength: true,
      // Once the response head went to the client, nginx stops sending the request body (only grpc_pass
      // keeps sending): apps must read the body before answering.
      fullDuplex: false,
    },
  });
}
