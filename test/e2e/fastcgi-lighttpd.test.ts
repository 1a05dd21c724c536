import { chown, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineFastCgiSuite, type FastCgiDeployment } from './fastcgi-suite.js';
import {
  allAvailable,
  checkBinary,
  checkFastCgiBuild,
  describeWithServer,
  findDescendants,
  LIGHTTPD_BIN,
  makeScratchDir,
  PROJECT_ROOT,
  serverAccount,
  startLighttpd,
  type ServerHandle,
} from './servers.js';

const MOUNT = '/app';
const PRIVATE = '/app/private';
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts');
const AUTH_APP = join(PROJECT_ROOT, 'examples/fastcgi-authorizer.ts');
const availability = allAvailable(checkBinary(LIGHTTPD_BIN), checkFastCgiBuild());

/**
 * lighttpd (conf/lighttpd-fastcgi.conf), which spawns both tsgi backends itself with their socket on fd 0. It
 * creates the sockets after dropping root, in a directory of their own that its account owns.
 */
async function startServer(label: string): Promise<ServerHandle> {
  const socketDir = await makeScratchDir(`${label}-sockets`);
  if (userInfo().uid === 0) {
    const account = serverAccount();
    await chown(socketDir, account.uid, account.gid);
  }
  try {
    const server = await startLighttpd('lighttpd-fastcgi.conf', {
      label,
      vars: { PROJECT_ROOT, APP, MOUNT, AUTH_APP, PRIVATE, SOCKET_DIR: socketDir },
    });
    return {
      ...server,
      stop: async () => {
        await server.stop();
        if (process.env.TSGI_E2E_KEEP !== '1') await rm(socketDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(socketDir, { recursive: true, force: true });
    throw error;
  }
}

async function deploy(): Promise<FastCgiDeployment> {
  const server = await startServer('lighttpd-fastcgi');
  // lighttpd starts the backend with stdout on /dev/null (its startup line is lost): find it among its children.
  return {
    server,
    backendPids: () => findDescendants(server.pid, APP),
    logs: () => server.errorLog(),
    stop: () => server.stop(),
  };
}

// lighttpd mod_fastcgi, "bin-path": lighttpd binds the unix socket and starts `tsgi serve` with it on fd 0.
defineFastCgiSuite({
  title: 'FastCGI behind lighttpd (mod_fastcgi, bin-path: socket on fd 0)',
  availability,
  mount: MOUNT,
  start: deploy,
  quirks: {
    // The conf reads bodies whole first (server.stream-request-body = 0): when streaming, lighttpd answers
    // chunked uploads to FastCGI backends with 411.
    chunkedUploads: 'de-chunked',
    // lighttpd never sets FCGI_KEEP_CONN: a connection per request.
    keepsConnections: false,
    fullDuplex: true,
    keepsContentLength: true,
  },
});

describeWithServer('FastCGI Authorizer behind lighttpd (examples/fastcgi-authorizer.ts guarding /app/private/)', availability, () => {
  let server: ServerHandle;

  beforeAll(async () => {
    server = await startServer('lighttpd-authorizer');
  });

  afterAll(async () => {
    await server?.stop();
  });

  const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`;
  const whoami = `${PRIVATE}/whoami`;

  it('no credentials: the Authorizer\'s 401 and WWW-Authenticate reach the client; the app is not asked', async () => {
    const response = await fetch(`${server.baseUrl}${whoami}`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm="tsgi"/);
    expect(await response.text()).toBe('401 Unauthorized\n');
  });

  it('a wrong password: 401', async () => {
    const response = await fetch(`${server.baseUrl}${whoami}`, { headers: { Authorization: basic('alice:nope') } });
    expect(response.status).toBe(401);
  });

  it('good credentials: the request goes on to the app, with Variable-X-User as X_USER', async () => {
    const response = await fetch(`${server.baseUrl}${whoami}`, { headers: { Authorization: basic('alice:wonderland') } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ user: 'alice', role: 'RESPONDER' });
    // The Authorizer's own headers never reach the client.
    expect(response.headers.get('variable-x-user')).toBeNull();
  });

  it('paths outside the guarded prefix are not asked about', async () => {
    const response = await fetch(`${server.baseUrl}${MOUNT}/hello`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('Hello, tsgi');
  });
});
