import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  describeWithServer,
  FCGID_MODULE,
  makeScratchDir,
  PROJECT_ROOT,
  PROXY_FCGI_MODULE,
  startApache,
  startBackend,
  type BackendHandle,
  type ServerHandle,
} from './servers.js';

/**
 * README, Troubleshooting: Apache treats a 200 response that carries `Location` from a CGI script (mod_cgi,
 * mod_cgid) or a FastCGI app under mod_fcgid as a redirect of its own. A local path (RFC 3875 §6.2.2, "local
 * redirect response") makes it serve that other resource in place of the app's answer (and one that leads back
 * into a `--mount` app loops: a 500); an absolute URL becomes a 302 with Apache's own page. The same app over
 * HTTP answers 200 with its own body; so does mod_proxy_fcgi (Apache 2.4.71; observed with
 * ProxyFCGIBackendType GENERIC, as conf/apache-proxy-fcgi.conf sets, and FPM). 201 + Location (Created) is
 * passed through untouched everywhere. The validator warns about 200 + Location (rule F23).
 */
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/location-app.ts');
const CGI_ENTRY = join(PROJECT_ROOT, 'test/e2e/fixtures/location-cgi.ts');
const OWN_BODY = "the app's own body\n";
const TARGET_BODY = "the target's body\n";
const STATIC_BODY = 'a static file of the web server\n';

/** Puts htdocs/static.txt (served by Apache's core at /static.txt) into a started Apache's scratch root. */
async function addStaticFile(server: ServerHandle): Promise<void> {
  const file = join(server.root, 'htdocs', 'static.txt');
  await writeFile(file, STATIC_BODY);
  await chmod(file, 0o644);
}

interface Answer {
  status: number;
  location: string | null;
  body: string;
}

async function get(url: string): Promise<Answer> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, location: response.headers.get('location'), body: await response.text() };
}

describeWithServer(
  'Apache and 200 + Location (mod_cgi, mod_cgid, mod_fcgid, mod_proxy_fcgi) against tsgi over HTTP',
  allAvailable(
    checkBinary(APACHE_BIN),
    checkFiles([
      { path: PROXY_FCGI_MODULE, package: 'apache2', executable: false },
      { path: FCGID_MODULE, package: 'libapache2-mod-fcgid', executable: false },
    ]),
    checkFastCgiBuild(),
  ),
  () => {
    let cgi: ServerHandle;
    let cgid: ServerHandle;
    let proxyFcgi: ServerHandle;
    let fcgid: ServerHandle;
    let fastcgiBackend: BackendHandle;
    let http: BackendHandle;
    const stops: Array<() => Promise<void>> = [];

    beforeAll(async () => {
      const cgiDir = await makeScratchDir('location-cgi');
      stops.push(() => rm(cgiDir, { recursive: true, force: true }));
      await buildCgi(CGI_ENTRY, join(cgiDir, 'location.cgi'));
      await chmod(cgiDir, 0o755);
      cgi = await startApache('apache-cgi.conf', { cgiDir, label: 'apache-location-cgi' });
      stops.push(() => cgi.stop());
      await addStaticFile(cgi);
      cgid = await startApache('apache-cgid.conf', { cgiDir, label: 'apache-location-cgid' });
      stops.push(() => cgid.stop());
      await addStaticFile(cgid);
      fastcgiBackend = await startBackend(APP, 'tcp', { mount: '/app', args: ['--workers', '0'] });
      stops.push(() => fastcgiBackend.stop());
      proxyFcgi = await startApache('apache-proxy-fcgi.conf', {
        label: 'apache-location-fcgi',
        vars: { BACKEND_URL: `fcgi://${fastcgiBackend.address}`, MOUNT: '/app' },
      });
      stops.push(() => proxyFcgi.stop());
      fcgid = await startApache('apache-fcgid.conf', { label: 'apache-location-fcgid', vars: { PROJECT_ROOT, APP, MOUNT: '/app' } });
      stops.push(() => fcgid.stop());
      await addStaticFile(fcgid);
      http = await startBackend(APP, 'tcp', { protocol: 'http', mount: '/app', args: ['--workers', '0'] });
      stops.push(() => http.stop());
    });
    afterAll(async () => {
      for (const stop of stops.reverse()) await stop();
    });

    it('over HTTP, tsgi answers 200 with the app\'s own body and its Location', async () => {
      const base = `http://${http.address}/app`;
      expect(await get(`${base}/local`)).toEqual({ status: 200, location: '/app/target', body: OWN_BODY });
      expect(await get(`${base}/absolute`)).toEqual({ status: 200, location: 'http://example.org/elsewhere', body: OWN_BODY });
    });

    it('mod_cgi, mod_cgid: 200 + a local Location serves the other resource instead (a local redirect, RFC 3875 6.2.2)', async () => {
      // The script run again for /target, and a static file: the client gets their body, not the app's.
      for (const server of [cgi, cgid]) {
        expect(await get(`${server.baseUrl}/cgi-bin/location.cgi/local`)).toEqual({ status: 200, location: null, body: TARGET_BODY });
        expect(await get(`${server.baseUrl}/cgi-bin/location.cgi/static`)).toEqual({ status: 200, location: null, body: STATIC_BODY });
      }
    });

    it('mod_cgi, mod_cgid: 200 + an absolute Location becomes a 302 with Apache\'s page, the app\'s body is gone', async () => {
      for (const server of [cgi, cgid]) {
        const answer = await get(`${server.baseUrl}/cgi-bin/location.cgi/absolute`);
        expect(answer.status).toBe(302);
        expect(answer.location).toBe('http://example.org/elsewhere');
        expect(answer.body).not.toContain(OWN_BODY.trim());
      }
    });

    it('mod_fcgid: the same for a FastCGI app, local redirect and 302', async () => {
      expect(await get(`${fcgid.baseUrl}/app/static`)).toEqual({ status: 200, location: null, body: STATIC_BODY });
      // Back into the app itself: the redirected request keeps REQUEST_URI=/app/local, from which --mount rebuilds
      // PATH_INFO=/local, so the app answers the same again: Apache gives up after 10 rounds with a 500.
      const loop = await get(`${fcgid.baseUrl}/app/local`);
      expect(loop.status).toBe(500);
      expect(await fcgid.errorLog()).toContain('AH00124: Request exceeded the limit of 10 internal redirects');
      const absolute = await get(`${fcgid.baseUrl}/app/absolute`);
      expect(absolute.status).toBe(302);
      expect(absolute.location).toBe('http://example.org/elsewhere');
      expect(absolute.body).not.toContain(OWN_BODY.trim());
    });

    it('mod_proxy_fcgi passes 200 + Location through as the app sent it', async () => {
      expect(await get(`${proxyFcgi.baseUrl}/app/local`)).toEqual({ status: 200, location: '/app/target', body: OWN_BODY });
      expect(await get(`${proxyFcgi.baseUrl}/app/static`)).toEqual({ status: 200, location: '/static.txt', body: OWN_BODY });
      expect(await get(`${proxyFcgi.baseUrl}/app/absolute`)).toEqual({ status: 200, location: 'http://example.org/elsewhere', body: OWN_BODY });
    });

    it('201 + Location is passed through untouched, under mod_cgi, mod_cgid, mod_fcgid and mod_proxy_fcgi', async () => {
      expect(await get(`${cgi.baseUrl}/cgi-bin/location.cgi/created`)).toEqual({ status: 201, location: '/cgi-bin/location.cgi/target', body: OWN_BODY });
      expect(await get(`${cgid.baseUrl}/cgi-bin/location.cgi/created`)).toEqual({ status: 201, location: '/cgi-bin/location.cgi/target', body: OWN_BODY });
      expect(await get(`${fcgid.baseUrl}/app/created`)).toEqual({ status: 201, location: '/app/target', body: OWN_BODY });
      expect(await get(`${proxyFcgi.baseUrl}/app/created`)).toEqual({ status: 201, location: '/app/target', body: OWN_BODY });
    });
  },
);
