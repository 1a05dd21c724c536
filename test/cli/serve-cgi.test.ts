import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
const TIMEOUT_MS = 30_000;

/** Echoes the request: method, SCRIPT_NAME|PATH_INFO|QUERY_STRING and the body. */
const ECHO_APP = `
export default async (environ, startResponse) => {
  const body = Buffer.from(await environ['tsgi.input'].read()).toString();
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return [environ.REQUEST_METHOD + ' ' + environ.SCRIPT_NAME + '|' + environ.PATH_INFO + '|' + environ.QUERY_STRING + ' run_once=' + environ['tsgi.run_once'] + ' body=' + body];
};
`;

let dir = '';
let app = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-serve-cgi-'));
  app = join(dir, 'echo.mjs');
  await writeFile(app, ECHO_APP);
  await writeFile(join(dir, 'typed.ts'), 'const greeting: string = "typed";\nexport default (_e: unknown, s: (status: string, h: [string, string][]) => void) => { s("200 OK", []); return [greeting]; };\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The CGI environment a web server would give the script (and nothing else of ours). */
function cgiEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_NAME: 'example.org',
    SERVER_PORT: '80',
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '/cgi-bin/app',
    PATH_INFO: '/items/7',
    QUERY_STRING: 'x=1',
    REQUEST_URI: '/cgi-bin/app/items/7?x=1',
    REMOTE_ADDR: '198.51.100.4',
    ...extra,
  };
}

function runCgi(args: string[], env: Record<string, string>, input?: string) {
  return execa('node', [BIN, 'serve', ...args], {
    env,
    extendEnv: false,
    reject: false,
    timeout: TIMEOUT_MS,
    stripFinalNewline: false,
    ...(input !== undefined ? { input } : {}),
  });
}

describe('tsgi serve under CGI (real pipes)', () => {
  it('--cgi answers the request in the environment, the body from stdin', async () => {
    const result = await runCgi([app, '--cgi'], cgiEnv({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '7', CONTENT_TYPE: 'text/plain' }), 'a=1&b=2');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 57\r\n\r\nPOST /cgi-bin/app|/items/7|x=1 run_once=true body=a=1&b=2',
    );
    // Nothing else on stdout: no startup line in front of the response.
    expect(result.stderr).toBe('');
  });

  it('is chosen without a flag when GATEWAY_INTERFACE is set, for TypeScript modules too', async () => {
    const result = await runCgi([join(dir, 'typed.ts')], cgiEnv());
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^Status: 200 OK\r\n[\s\S]*\r\n\r\ntyped$/);
  });

  it('exits once the response is out, even when the web server leaves stdin open', async () => {
    const child = execa('node', [BIN, 'serve', app], { env: cgiEnv(), extendEnv: false, reject: false, timeout: TIMEOUT_MS, stdin: 'pipe' });
    const result = await child;
    expect(result.timedOut).toBe(false);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('GET /cgi-bin/app|/items/7|x=1');
  });

  it('writes the access log line to the file when the request is done', async () => {
    const log = join(dir, 'access.log');
    const env = cgiEnv({ HTTP_USER_AGENT: 'test-agent/1.0', HTTP_REFERER: 'http://example.org/', REMOTE_USER: 'ann' });
    const first = await runCgi([app, '--access-log', log], env);
    const second = await runCgi([app, '--access-log', log], { ...env, REQUEST_METHOD: 'HEAD' });
    expect([first.exitCode, second.exitCode]).toEqual([0, 0]);
    const lines = (await readFile(log, 'utf8')).split('\n');
    const date = String.raw`\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`;
    expect(lines[0]).toMatch(
      new RegExp(`^198\\.51\\.100\\.4 - ann ${date} "GET /cgi-bin/app/items/7\\?x=1 HTTP/1\\.1" 200 49 "http://example\\.org/" "test-agent/1\\.0"$`),
    );
    expect(lines[1]).toMatch(new RegExp(`^198\\.51\\.100\\.4 - ann ${date} "HEAD /cgi-bin/app/items/7\\?x=1 HTTP/1\\.1" 200 - `));
    expect(lines).toHaveLength(3);
  });

  it('refuses a CONTENT_LENGTH over --max-body with 413, without running the app', async () => {
    const result = await runCgi([app, '--cgi', '--max-body', '4'], cgiEnv({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '7' }), 'a=1&b=2');
    expect(result.stdout).toMatch(/^Status: 413 Content Too Large\r\n/);
    expect(result.stdout).not.toContain('body=');
    expect(result.stderr).toContain('request body exceeds --max-body (7 > 4)');
  });

  it('answers 500 when the module does not load, the reason on stderr', async () => {
    const result = await runCgi([join(dir, 'missing.mjs')], cgiEnv());
    expect(result.stdout).toMatch(/^Status: 500 Internal Server Error\r\n/);
    expect(result.stderr).toContain('tsgi: module not found');
  });

  it('--cgi and another transport exclude each other', async () => {
    const result = await runCgi([app, '--cgi', '--http', '8000'], cgiEnv());
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--http and --cgi exclude each other');
  });
});

describe('httpoxy: no CGI path lets app code see HTTP_PROXY (the client\'s Proxy: header)', () => {
  const FIXTURES = join(process.cwd(), 'test', 'fixtures');
  // HTTP_PROXY is what a web server makes of a client's `Proxy: http://evil.test:1` header; the real proxy
  // setting, when a CGI script is given one at all, is the lower-case http_proxy, which must stay.
  const proxyEnv = { HTTP_PROXY: 'http://evil.test:1', http_proxy: 'http://proxy.example:3128' };
  const seen = (stdout: string): Record<string, unknown> => JSON.parse(stdout.slice(stdout.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
  const clean = { seenAtLoad: null, lowerCaseAtLoad: 'http://proxy.example:3128', seenAtRun: null, inEnviron: null };

  it('tsgi serve --cgi: the app module\'s top-level code runs without it', async () => {
    const result = await runCgi([join(FIXTURES, 'httpoxy-app.mjs'), '--cgi'], cgiEnv(proxyEnv));
    expect(result.exitCode).toBe(0);
    expect(seen(result.stdout)).toEqual(clean);
  });

  it('tsgi serve with CGI detected from GATEWAY_INTERFACE, JavaScript and TypeScript modules', async () => {
    const typed = join(dir, 'httpoxy-app.ts');
    await writeFile(
      typed,
      "const seenAtLoad: string | null = process.env.HTTP_PROXY ?? null;\n" +
        "export default (_e: unknown, s: (status: string, h: [string, string][]) => void) => { s('200 OK', [['Content-Type', 'application/json']]); return [JSON.stringify({ seenAtLoad })]; };\n",
    );
    const plain = await runCgi([join(FIXTURES, 'httpoxy-app.mjs')], cgiEnv(proxyEnv));
    expect(seen(plain.stdout)).toEqual(clean);
    const ts = await runCgi([typed], cgiEnv(proxyEnv));
    expect(seen(ts.stdout)).toEqual({ seenAtLoad: null });
  });

  it('an unbundled ESM script that imports tsgi first: neither its body nor the modules imported after tsgi see it', async () => {
    const result = await execa('node', [join(FIXTURES, 'httpoxy-script.mjs')], {
      env: cgiEnv(proxyEnv),
      extendEnv: false,
      reject: false,
      timeout: TIMEOUT_MS,
    });
    expect(result.exitCode).toBe(0);
    expect(seen(result.stdout)).toEqual({ proxyAtImport: null, ...clean });
  });

  it('leaves HTTP_PROXY alone outside CGI (no GATEWAY_INTERFACE): there it is a real proxy setting', async () => {
    const { GATEWAY_INTERFACE: _dropped, ...env } = cgiEnv(proxyEnv);
    const result = await execa('node', ['--input-type=module', '-e', "await import('tsgi'); process.stdout.write(String(process.env.HTTP_PROXY));"], {
      env,
      extendEnv: false,
      reject: false,
      timeout: TIMEOUT_MS,
      cwd: process.cwd(),
    });
    expect(result.stdout).toBe('http://evil.test:1');
  });
});
