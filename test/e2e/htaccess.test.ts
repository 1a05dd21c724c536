import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';
import { APACHE_BIN, checkBinary, describeWithServer, makeScratchDir, PROJECT_ROOT, startApache, type ServerHandle } from './servers.js';

// conf/apache-htaccess.conf serves a DocumentRoot with AllowOverride All, like a shared host; conf/htaccess is
// copied verbatim as .htaccess next to app.cgi (cgi-bin/env.ts, so every answer shows the environ).
//   /app/     the .htaccess as shipped (CGIPassAuth On)
//   /legacy/  the same without CGIPassAuth: Authorization must come through the mod_rewrite fallback
describeWithServer('shared-hosting .htaccess behind Apache (AllowOverride All, mod_cgi)', checkBinary(APACHE_BIN), () => {
  let server: ServerHandle;
  let site: string;

  beforeAll(async () => {
    site = await makeScratchDir('site');
    const htaccess = await readFile(join(PROJECT_ROOT, 'conf', 'htaccess'), 'utf8');
    const withoutPassAuth = htaccess.replace(/^\s*CGIPassAuth On\s*$/gm, '');
    expect(withoutPassAuth).not.toMatch(/^\s*CGIPassAuth/im);
    for (const [dir, text] of [
      ['app', htaccess],
      ['legacy', withoutPassAuth],
    ] as const) {
      await mkdir(join(site, dir));
      await chmod(join(site, dir), 0o755);
      await writeFile(join(site, dir, '.htaccess'), text, { mode: 0o644 });
      await writeFile(join(site, dir, 'static.txt'), 'a static file\n', { mode: 0o644 });
    }
    await buildCgi(join(PROJECT_ROOT, 'cgi-bin', 'env.ts'), join(site, 'app', 'app.cgi'));
    await copyFile(join(site, 'app', 'app.cgi'), join(site, 'legacy', 'app.cgi'));
    await chmod(join(site, 'legacy', 'app.cgi'), 0o755);
    server = await startApache('apache-htaccess.conf', { vars: { DOC_ROOT: site }, label: 'apache-htaccess' });
  });

  afterAll(async () => {
    await server?.stop();
    if (site && process.env.TSGI_E2E_KEEP !== '1') await rm(site, { recursive: true, force: true });
  });

  async function envOf(path: string, init?: RequestInit): Promise<Record<string, string>> {
    const response = await fetch(`${server.baseUrl}${path}`, init);
    const text = await response.text();
    expect(response.status, text).toBe(200);
    return JSON.parse(text) as Record<string, string>;
  }

  it('the folder URL runs app.cgi (DirectoryIndex) with an empty PATH_INFO', async () => {
    const env = await envOf('/app/');
    expect(env.SCRIPT_NAME).toBe('/app/app.cgi');
    expect(env.PATH_INFO).toBe('');
  });

  it('a pretty URL is routed to app.cgi: the rest of the path is PATH_INFO, the query stays raw', async () => {
    const env = await envOf('/app/users/42?x=%41%2B&y=%E2%82%AC');
    expect(env.SCRIPT_NAME).toBe('/app/app.cgi');
    expect(env.PATH_INFO).toBe('/users/42');
    expect(env.QUERY_STRING).toBe('x=%41%2B&y=%E2%82%AC');
    expect(env.REQUEST_URI).toBe('/app/users/42?x=%41%2B&y=%E2%82%AC');
  });

  it('a UTF-8 segment arrives in PATH_INFO as its bytes', async () => {
    const env = await envOf('/app/caf%C3%A9/menu');
    expect(Buffer.from(env.PATH_INFO ?? '', 'latin1').toString('utf8')).toBe('/café/menu');
  });

  it('existing files are served as they are, not by the app', async () => {
    const response = await fetch(`${server.baseUrl}/app/static.txt`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('a static file\n');
  });

  it('the .htaccess itself is not served', async () => {
    const response = await fetch(`${server.baseUrl}/app/.htaccess`);
    expect(response.status).toBe(403);
  });

  it('Authorization reaches the app with CGIPassAuth On', async () => {
    const env = await envOf('/app/private', { headers: { Authorization: 'Bearer token-123' } });
    expect(env.HTTP_AUTHORIZATION).toBe('Bearer token-123');
  });

  it('without CGIPassAuth, the RewriteRule [E=HTTP_AUTHORIZATION:...] fallback still delivers it', async () => {
    const env = await envOf('/legacy/private', { headers: { Authorization: 'Bearer token-456' } });
    expect(env.SCRIPT_NAME).toBe('/legacy/app.cgi');
    // Apache renames variables across the internal redirect: apps read HTTP_AUTHORIZATION, then this one.
    expect(env.HTTP_AUTHORIZATION ?? env.REDIRECT_HTTP_AUTHORIZATION).toBe('Bearer token-456');
    // And without the header, nothing is made up.
    const anonymous = await envOf('/legacy/private');
    expect(anonymous.HTTP_AUTHORIZATION ?? anonymous.REDIRECT_HTTP_AUTHORIZATION).toBeUndefined();
  });

  it('no script failed on the way', async () => {
    expect(await server.errorLog()).not.toMatch(/Premature end of script headers|malformed header|AH01215/);
  });
});
