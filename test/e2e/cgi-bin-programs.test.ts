/**
 * Real CGI programs served by `tsgi serve --cgi-bin`, end to end (issue 12, part 7): git http-backend (clone,
 * a push large enough to be sent chunked, fetch, protocol v2, tags), php-cgi (GET, POST, multipart upload,
 * cookies, redirects) and Perl CGI.pm (a form, an upload), plus scripts that fail (dying before their head,
 * never answering, flooding headers). Each runs twice: over tsgi's own HTTP server, and behind a real nginx
 * over FastCGI with conf/nginx-cgi-bin.conf, the fcgiwrap replacement.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  CGI_PM_FILE,
  GIT_BIN,
  GIT_HTTP_BACKEND,
  git,
  gitOk,
  isAlive,
  liveGroupMembers,
  makeCgiBinSite,
  MOUNT,
  multipartBody,
  PHP_CGI_BIN,
  readPidFile,
  removeScratch,
  send,
  sha256,
  siteArgs,
  startCgiBinServer,
  writeRandomFile,
  type CgiBinServer,
  type CgiBinSite,
  type CgiResponse,
} from './cgi-bin-harness.js';
import {
  allAvailable,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  describeWithServer,
  makeScratchDir,
  NGINX_BIN,
  startNginx,
  waitFor,
  type ServerHandle,
} from './servers.js';

/** git sends a push body chunked when it is larger than http.postBuffer: this one is. */
const POST_BUFFER = 65_536;
/** The random (incompressible) file pushed: well above POST_BUFFER, and above the 1 MiB a host reading ahead would accept. */
const PUSH_FILE_BYTES = 3 * 1024 * 1024;
/** The file uploaded to PHP and CGI.pm: above PHP's default upload_max_filesize (2M), within PHPRC's php.ini. */
const UPLOAD_FILE_BYTES = 3 * 1024 * 1024 + 12_345;
/** The --timeout of the deployment serving the failing scripts. */
const TIMEOUT_S = 2;

const programsAvailable = allAvailable(
  checkFastCgiBuild(),
  checkFiles([
    { path: GIT_BIN, package: 'git' },
    { path: GIT_HTTP_BACKEND, package: 'git' },
    { path: PHP_CGI_BIN, package: 'php-cgi' },
    { path: CGI_PM_FILE, package: 'libcgi-pm-perl', executable: false },
  ]),
);

/** How the cgi-bin is reached: tsgi's HTTP server, or nginx in front of tsgi's FastCGI server. */
type Front = 'http' | 'nginx';

/** A started deployment: the base URL of the site (no trailing slash), the tsgi process, the logs. */
interface Deployment {
  base: string;
  tsgi: CgiBinServer;
  nginx: ServerHandle | null;
  /** Everything logged so far: tsgi's --error-log and output, nginx's error log. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts `tsgi serve SITE ARGS` over HTTP, or over FastCGI with nginx (conf/nginx-cgi-bin.conf) in front. */
async function deploy(front: Front, site: CgiBinSite, extraArgs: string[]): Promise<Deployment> {
  const tsgi = await startCgiBinServer(front === 'http' ? 'http' : 'fastcgi', [...siteArgs(site), ...extraArgs]);
  let nginx: ServerHandle | null = null;
  try {
    if (front === 'nginx') nginx = await startNginx('nginx-cgi-bin.conf', { label: 'nginx-cgi-bin', vars: { BACKEND: tsgi.address } });
  } catch (error) {
    await tsgi.stop();
    throw error;
  }
  return {
    base: nginx ? nginx.baseUrl : `http://${tsgi.address}`,
    tsgi,
    nginx,
    logs: async () =>
      `--- tsgi error log ---\n${await readFile(site.errorLog, 'utf8').catch(() => '')}\n--- tsgi output ---\n${tsgi.proc.output()}` +
      (nginx ? `\n--- nginx error log ---\n${await nginx.errorLog()}` : ''),
    stop: async () => {
      await nginx?.stop();
      await tsgi.stop();
    },
  };
}

/**
 * The request heads git sent, from a GIT_TRACE_CURL file: each run of consecutive "=> Send header: LINE" lines
 * joined with newlines ("POST /path HTTP/1.1\nHost: ...").
 */
function requestHeadBlocks(trace: string): string[] {
  const blocks: string[] = [];
  let current: string[] = [];
  for (const line of trace.split('\n')) {
    const match = /=> Send header: (.*)$/.exec(line);
    if (match) {
      current.push((match[1] as string).trimEnd());
    } else if (current.length > 0) {
      blocks.push(current.join('\n'));
      current = [];
    }
  }
  if (current.length > 0) blocks.push(current.join('\n'));
  return blocks;
}

/** Fails with the deployment's logs unless `response` has `status`. */
async function expectStatus(deployment: Deployment, what: string, response: CgiResponse, status: number): Promise<void> {
  if (response.status !== status) {
    expect.fail(`${what}: expected ${status}, got ${response.status}: ${response.text.slice(0, 500)}\n${await deployment.logs()}`);
  }
}

for (const front of ['http', 'nginx'] as const) {
  const title = front === 'http' ? 'over tsgi HTTP' : 'behind nginx over FastCGI (conf/nginx-cgi-bin.conf)';
  const availability = front === 'http' ? programsAvailable : allAvailable(checkBinary(NGINX_BIN), programsAvailable);

  describeWithServer(`CGI programs under tsgi serve --cgi-bin, ${title}`, availability, () => {
    let site: CgiBinSite;
    let deployment: Deployment;
    /** The client side of the git tests: HOME, working copies, traces. */
    let client: string;
    let seedCommit: string;
    let pushedCommit: string;
    let pushedFileSha: string;
    const repoUrl = (): string => `${deployment.base}${MOUNT}/git/project.git`;
    const clientGit = (args: string[], cwd = client, env: Record<string, string> = {}) => gitOk(args, { cwd, home: client, env });

    beforeAll(async () => {
      site = await makeCgiBinSite(`cgi-bin-${front}`);
      client = await makeScratchDir(`cgi-bin-client-${front}`);
      // The served repository: one commit and a tag, made locally, then a bare copy under GIT_PROJECT_ROOT that
      // accepts pushes over HTTP without an authenticated user (http.receivepack).
      const seed = join(client, 'seed');
      await clientGit(['init', '-q', seed]);
      await writeFile(join(seed, 'README'), 'served by tsgi serve --cgi-bin\n');
      await clientGit(['add', 'README'], seed);
      await clientGit(['commit', '-q', '-m', 'first'], seed);
      await clientGit(['tag', 'v1'], seed);
      seedCommit = await clientGit(['rev-parse', 'HEAD'], seed);
      await clientGit(['clone', '-q', '--bare', seed, join(site.gitRoot, 'project.git')]);
      await clientGit(['config', 'http.receivepack', 'true'], join(site.gitRoot, 'project.git'));
      deployment = await deploy(front, site, ['--workers', '2']);
    });

    afterAll(async () => {
      await deployment?.stop();
      await removeScratch(site?.root);
      await removeScratch(client);
    });

    // --- git http-backend ---

    it('git: clones the repository with its tags', async () => {
      await clientGit(['clone', '-q', repoUrl(), 'first']);
      const first = join(client, 'first');
      expect(await clientGit(['rev-parse', 'HEAD'], first)).toBe(seedCommit);
      expect(await readFile(join(first, 'README'), 'utf8')).toBe('served by tsgi serve --cgi-bin\n');
      expect(await clientGit(['tag', '--list'], first)).toBe('v1');
      // A second working copy, to fetch into later.
      await clientGit(['clone', '-q', repoUrl(), 'second']);
    });

    it('git: pushes a commit and a tag large enough to be sent chunked, streamed to git without CONTENT_LENGTH', async () => {
      const first = join(client, 'first');
      pushedFileSha = sha256(await writeRandomFile(join(first, 'random.bin'), PUSH_FILE_BYTES));
      await clientGit(['add', 'random.bin'], first);
      await clientGit(['commit', '-q', '-m', 'random bytes'], first);
      await clientGit(['tag', '-a', 'v2', '-m', 'the random release'], first);
      pushedCommit = await clientGit(['rev-parse', 'HEAD'], first);
      const trace = join(client, 'push-trace.txt');
      const result = await git(['-c', `http.postBuffer=${POST_BUFFER}`, 'push', 'origin', 'main', 'v2'], {
        cwd: first,
        home: client,
        env: { GIT_TRACE_CURL: trace, GIT_TRACE_CURL_NO_DATA: '1' },
      });
      if (result.exitCode !== 0) expect.fail(`git push exited ${result.exitCode}:\n${result.stderr}\n${await deployment.logs()}`);
      // The pack went as a chunked POST (what a host reading bodies ahead up to 1 MiB refused with 411). git may
      // first send a small probe POST with a length; the pack's own POST is chunked.
      const receivePackPosts = requestHeadBlocks(await readFile(trace, 'utf8')).filter((head) =>
        head.startsWith(`POST ${MOUNT}/git/project.git/git-receive-pack `),
      );
      expect(receivePackPosts.length, 'POSTs to git-receive-pack in the trace').toBeGreaterThan(0);
      expect(receivePackPosts.some((head) => /^Transfer-Encoding: chunked$/im.test(head)), receivePackPosts.join('\n---\n')).toBe(true);
      // The server's repository has the commit, the tag and the bytes.
      const bare = join(site.gitRoot, 'project.git');
      expect(await clientGit(['rev-parse', 'main'], bare)).toBe(pushedCommit);
      expect(await clientGit(['rev-parse', 'v2^{commit}'], bare)).toBe(pushedCommit);
      expect(await clientGit(['rev-parse', 'main:random.bin'], bare)).toBe(await clientGit(['rev-parse', 'HEAD:random.bin'], first));
      // tsgi's access log has the push.
      const accessLog = await readFile(site.accessLog, 'utf8');
      expect(accessLog).toMatch(new RegExp(`"POST ${MOUNT}/git/project\\.git/git-receive-pack HTTP/1\\.1" 200 `));
    });

    it('git: fetches the pushed commit and tag into another clone, byte for byte', async () => {
      const second = join(client, 'second');
      await clientGit(['fetch', '-q', '--tags', 'origin'], second);
      expect(await clientGit(['rev-parse', 'origin/main'], second)).toBe(pushedCommit);
      expect(await clientGit(['tag', '--list'], second)).toBe('v1\nv2');
      await clientGit(['merge', '-q', '--ff-only', 'origin/main'], second);
      expect(sha256(await readFile(join(second, 'random.bin')))).toBe(pushedFileSha);
    });

    it('git: ls-remote speaks protocol v2 when asked (Git-Protocol reaches git as HTTP_GIT_PROTOCOL), v0 otherwise', async () => {
      const listing = async (version: 0 | 2): Promise<{ refs: string; trace: string }> => {
        const trace = join(client, `ls-remote-v${version}.txt`);
        const refs = await clientGit(['-c', `protocol.version=${version}`, 'ls-remote', repoUrl()], client, { GIT_TRACE_PACKET: trace });
        return { refs, trace: await readFile(trace, 'utf8') };
      };
      for (const version of [2, 0] as const) {
        const { refs, trace } = await listing(version);
        expect(refs).toContain(`${pushedCommit}\trefs/heads/main`);
        expect(refs).toContain(`${seedCommit}\trefs/tags/v1`);
        expect(refs).toMatch(/\trefs\/tags\/v2\n/);
        expect(refs).toContain(`${pushedCommit}\trefs/tags/v2^{}`);
        if (version === 2) expect(trace).toMatch(/git< version 2/);
        else expect(trace).not.toMatch(/git< version 2/);
      }
    });

    it('refuses a symlink that leads out of the cgi-bin folder (403), even to git-http-backend', async () => {
      const response = await send(`${deployment.base}${MOUNT}/git-link/project.git/info/refs?service=git-upload-pack`);
      await expectStatus(deployment, 'GET through the symlink', response, 403);
    });

    it('a chunked upload reaches the script as it comes, to EOF on its stdin, without CONTENT_LENGTH', async () => {
      const data = randomBytes(UPLOAD_FILE_BYTES);
      const chunks = [data.subarray(0, 1000), data.subarray(1000, 2_000_000), data.subarray(2_000_000)];
      const chunked = await send(`${deployment.base}${MOUNT}/body.pl`, { method: 'PUT', chunks });
      await expectStatus(deployment, 'chunked PUT body.pl', chunked, 200);
      expect(chunked.text).toBe(`content_length=unset\nsize=${data.length}\nsha256=${sha256(data)}\n`);
      // With a length, the script gets it.
      const sized = await send(`${deployment.base}${MOUNT}/body.pl`, { method: 'PUT', headers: { 'Content-Length': String(data.length) }, body: data });
      await expectStatus(deployment, 'PUT body.pl', sized, 200);
      expect(sized.text).toBe(`content_length=${data.length}\nsize=${data.length}\nsha256=${sha256(data)}\n`);
    });

    // --- php-cgi ---

    it('php-cgi: GET with a query and PATH_INFO, REDIRECT_STATUS=200 set for it', async () => {
      const response = await send(`${deployment.base}${MOUNT}/info.php/extra/path?name=Ann&tags[]=a&tags[]=b`);
      await expectStatus(deployment, 'GET info.php', response, 200);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json).toMatchObject({
        method: 'GET',
        get: { name: 'Ann', tags: ['a', 'b'] },
        scriptName: `${MOUNT}/info.php`,
        pathInfo: '/extra/path',
        queryString: 'name=Ann&tags[]=a&tags[]=b',
        redirectStatus: '200',
        gatewayInterface: 'CGI/1.1',
      });
    });

    it('php-cgi: POST of a urlencoded form', async () => {
      const body = new URLSearchParams({ name: 'Zoë', comment: 'a & b = c' }).toString();
      const response = await send(`${deployment.base}${MOUNT}/info.php?via=post`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(Buffer.byteLength(body)) },
        body,
      });
      await expectStatus(deployment, 'POST info.php', response, 200);
      expect(response.json).toMatchObject({ method: 'POST', get: { via: 'post' }, post: { name: 'Zoë', comment: 'a & b = c' } });
    });

    it('php-cgi: multipart upload, the file arrives byte for byte (sha256 computed by PHP)', async () => {
      const file = randomBytes(UPLOAD_FILE_BYTES);
      const { body, contentType } = multipartBody([
        { name: 'note', value: 'holiday photos' },
        { name: 'upload', value: file, filename: 'photo.bin' },
      ]);
      const response = await send(`${deployment.base}${MOUNT}/upload.php`, {
        method: 'POST',
        headers: { 'Content-Type': contentType, 'Content-Length': String(body.length) },
        body,
      });
      await expectStatus(deployment, 'POST upload.php', response, 200);
      expect(response.json).toEqual({
        post: { note: 'holiday photos' },
        files: { upload: { name: 'photo.bin', size: UPLOAD_FILE_BYTES, error: 0, sha256: sha256(file) } },
        // PHPRC (--cgi-env) pointed php-cgi at the site's php.ini.
        uploadMaxFilesize: '16M',
      });
    });

    it('php-cgi: sets cookies (each Set-Cookie kept apart) and reads them back', async () => {
      const first = await send(`${deployment.base}${MOUNT}/cookie.php`);
      await expectStatus(deployment, 'GET cookie.php', first, 200);
      expect(first.json).toEqual({ cookies: {}, count: 1 });
      const setCookies = first.headers['set-cookie'] ?? [];
      expect(setCookies).toHaveLength(2);
      expect(setCookies[0]).toMatch(/^count=1; path=\/cgi-bin\/; HttpOnly$/i);
      expect(setCookies[1]).toMatch(/^flavour=oatmeal%20raisin; path=\/cgi-bin\/$/i);
      const cookieHeader = setCookies.map((line) => line.split(';')[0]).join('; ');
      const second = await send(`${deployment.base}${MOUNT}/cookie.php`, { headers: { Cookie: cookieHeader } });
      expect(second.json).toEqual({ cookies: { count: '1', flavour: 'oatmeal raisin' }, count: 2 });
      expect(second.headers['set-cookie']?.[0]).toMatch(/^count=2;/);
    });

    it('php-cgi: a redirect with its own status reaches the client', async () => {
      const response = await send(`${deployment.base}${MOUNT}/redirect.php`);
      await expectStatus(deployment, 'GET redirect.php', response, 303);
      expect(response.headers.location).toBe('/cgi-bin/info.php?from=redirect');
      const followed = await send(`${deployment.base}${response.headers.location}`);
      expect(followed.json).toMatchObject({ method: 'GET', get: { from: 'redirect' } });
    });

    it('a local redirect (Location path alone) is served from the other script, fetched with GET', async () => {
      const response = await send(`${deployment.base}${MOUNT}/local-redirect.cgi`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '5' },
        body: 'a=b&c',
      });
      await expectStatus(deployment, 'POST local-redirect.cgi', response, 200);
      expect(response.headers.location).toBeUndefined();
      expect(response.json).toMatchObject({ method: 'GET', get: { from: 'local-redirect' }, scriptName: `${MOUNT}/info.php` });
    });

    // --- Perl CGI.pm ---

    it('CGI.pm: a form by GET and by POST', async () => {
      const get = await send(`${deployment.base}${MOUNT}/form.pl?name=Ann&color=red&color=blue`);
      await expectStatus(deployment, 'GET form.pl', get, 200);
      expect(get.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(get.text).toBe('method=GET\ncolor=red,blue\nname=Ann\n');
      const body = 'name=Bob+Smith&color=green&empty=';
      const post = await send(`${deployment.base}${MOUNT}/form.pl`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length) },
        body,
      });
      await expectStatus(deployment, 'POST form.pl', post, 200);
      expect(post.text).toBe('method=POST\ncolor=green\nempty=\nname=Bob Smith\n');
    });

    it('CGI.pm: a multipart upload, byte for byte', async () => {
      const file = randomBytes(UPLOAD_FILE_BYTES);
      const { body, contentType } = multipartBody([
        { name: 'file', value: file, filename: 'report.dat' },
        { name: 'note', value: 'quarterly' },
      ]);
      const response = await send(`${deployment.base}${MOUNT}/upload.pl`, {
        method: 'POST',
        headers: { 'Content-Type': contentType, 'Content-Length': String(body.length) },
        body,
      });
      await expectStatus(deployment, 'POST upload.pl', response, 200);
      expect(response.text).toBe(`filename=report.dat\nsize=${UPLOAD_FILE_BYTES}\nsha256=${sha256(file)}\nnote=quarterly\n`);
    });
  });

  describeWithServer(`failing CGI scripts under tsgi serve --cgi-bin --timeout ${TIMEOUT_S}, ${title}`, availability, () => {
    let site: CgiBinSite;
    let deployment: Deployment;

    beforeAll(async () => {
      site = await makeCgiBinSite(`cgi-bin-failures-${front}`);
      deployment = await deploy(front, site, ['--timeout', String(TIMEOUT_S)]);
    });

    afterAll(async () => {
      await deployment?.stop();
      await removeScratch(site?.root);
    });

    /** Waits until none of `pids` is alive, nor anything else in the process group led by the first. */
    async function expectAllGone(what: string, pids: number[]): Promise<void> {
      await waitFor(`${what}: processes ${pids.join(', ')} and their group to be gone`, async () => {
        for (const pid of pids) if (await isAlive(pid)) return false;
        return (await liveGroupMembers(pids[0] as number)).length === 0;
      });
    }

    it('a script that dies before its head: 500, and its stderr in --error-log', async () => {
      const response = await send(`${deployment.base}${MOUNT}/die-early.cgi`);
      await expectStatus(deployment, 'GET die-early.cgi', response, 500);
      await waitFor('the script stderr in the error log', async () =>
        (await readFile(site.errorLog, 'utf8').catch(() => '')).includes('die-early.cgi: cannot open /nonexistent/settings.ini'),
      );
    });

    it(`a script that never answers: 504 at --timeout ${TIMEOUT_S}, its process group killed`, async () => {
      const started = Date.now();
      const response = await send(`${deployment.base}${MOUNT}/never.cgi`, { timeoutMs: 60_000 });
      await expectStatus(deployment, 'GET never.cgi', response, 504);
      // Sooner than the host's default limit (30 s): --timeout applied.
      expect(Date.now() - started).toBeLessThan(25_000);
      const script = await readPidFile(join(site.runDir, 'never.pid'));
      const helper = await readPidFile(join(site.runDir, 'never-helper.pid'));
      await expectAllGone('never.cgi', [script, helper]);
    });

    it('a script that floods headers: 500 at the head limit, the script killed', async () => {
      const response = await send(`${deployment.base}${MOUNT}/flood.cgi`, { timeoutMs: 60_000 });
      await expectStatus(deployment, 'GET flood.cgi', response, 500);
      expect(response.headers['x-flood']).toBeUndefined();
      const script = await readPidFile(join(site.runDir, 'flood.pid'));
      await expectAllGone('flood.cgi', [script]);
    });

    it('keeps serving after all of that', async () => {
      const response = await send(`${deployment.base}${MOUNT}/form.pl?still=alive`);
      await expectStatus(deployment, 'GET form.pl', response, 200);
      expect(response.text).toBe('method=GET\nstill=alive\n');
    });
  });
}
