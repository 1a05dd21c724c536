import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig, ConfigError, loadConfigFile, mergeConfig } from '../../src/cli/config-file.js';
import { SERVE_OPTIONS } from '../../src/cli/serve-command.js';
import { freePort, waitForLine } from './cli-helpers.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
const HELLO = join(process.cwd(), 'examples', 'hello.ts');
const TRANSPORTS = ['http', 'fastcgi', 'scgi', 'uwsgi', 'cgi'];

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const check = (data: unknown) => checkConfig(data, SERVE_OPTIONS, 'tsgi.json', '/srv/site');

describe('checkConfig', () => {
  it('accepts every serve flag by its long name, numbers where a number is meant', () => {
    const config = check({
      app: 'app.ts:api',
      fastcgi: 'unix:run/app.sock',
      mount: '/app',
      'socket-mode': '660',
      'socket-owner': 33,
      'socket-group': 'www-data',
      workers: 4,
      'max-requests': 1000,
      'max-requests-jitter': 50,
      'max-rss': 512,
      timeout: 2.5,
      'graceful-timeout': '30',
      'max-body': '10m',
      'access-log': 'logs/access.log',
      reload: false,
    });
    expect(config.app).toBe('/srv/site/app.ts:api');
    expect(config.values).toEqual({
      fastcgi: 'unix:/srv/site/run/app.sock',
      mount: '/app',
      'socket-mode': '660',
      'socket-owner': '33',
      'socket-group': 'www-data',
      workers: '4',
      'max-requests': '1000',
      'max-requests-jitter': '50',
      'max-rss': '512',
      timeout: '2.5',
      'graceful-timeout': '30',
      'max-body': '10m',
      'access-log': '/srv/site/logs/access.log',
      reload: false,
    });
    // Absolute paths, stderr and TCP addresses stay as they are.
    expect(check({ app: '/abs/app.ts', 'access-log': '-', http: 8080 })).toEqual({ path: 'tsgi.json', app: '/abs/app.ts', values: { 'access-log': '-', http: '8080' } });
    expect(check({ cgi: true, uwsgi: 'unix:/run/u.sock' }).values).toEqual({ cgi: true, uwsgi: 'unix:/run/u.sock' });
  });

  it('takes the peer limits as numbers or strings', () => {
    expect(check({ 'max-connections': 256, 'header-timeout': 2.5, 'body-timeout': '60', 'idle-timeout': 0 }).values).toEqual({
      'max-connections': '256',
      'header-timeout': '2.5',
      'body-timeout': '60',
      'idle-timeout': '0',
    });
    expect(() => check({ 'header-timeout': -1 })).toThrow('"header-timeout" must be a string or a number (got -1)');
    expect(() => check({ headerTimeout: 5 })).toThrow('(did you mean "header-timeout"?)');
  });

  it('names the key of an unknown option or a wrong type', () => {
    expect(() => check({ htpp: '8000' })).toThrow(/config tsgi\.json: unknown key "htpp" \(keys: app, http, fastcgi, .*reload\)/);
    expect(() => check({ maxRequests: 5 })).toThrow('unknown key "maxRequests" (did you mean "max-requests"?)');
    expect(() => check({ max_body: '1m' })).toThrow('(did you mean "max-body"?)');
    expect(() => check({ config: 'other.json' })).toThrow('unknown key "config"');
    expect(() => check({ help: true })).toThrow('unknown key "help"');
    expect(() => check({ workers: true })).toThrow('"workers" must be a string or a number (got true)');
    expect(() => check({ workers: -1 })).toThrow('"workers" must be a string or a number (got -1)');
    expect(() => check({ mount: 5 })).toThrow('"mount" must be a string (got 5)');
    expect(() => check({ 'socket-mode': 660 })).toThrow('"socket-mode" must be a string (got 660)');
    expect(() => check({ reload: 'yes' })).toThrow('"reload" must be true or false (got "yes")');
    expect(() => check({ app: ['a.ts'] })).toThrow('"app" must be a string, MODULE[:EXPORT] (got an array)');
    expect(() => check([])).toThrow('must hold an object of options');
    expect(() => check(null)).toThrow(ConfigError);
  });
});

describe('mergeConfig', () => {
  it('lets command-line flags win, a transport flag replacing the file transport', () => {
    const file = { fastcgi: '127.0.0.1:9000', workers: '4', mount: '/app' };
    expect(mergeConfig(file, { workers: '2' }, TRANSPORTS)).toEqual({ fastcgi: '127.0.0.1:9000', workers: '2', mount: '/app' });
    expect(mergeConfig(file, { http: '8080', mount: undefined }, TRANSPORTS)).toEqual({ http: '8080', workers: '4', mount: '/app' });
    expect(mergeConfig({ cgi: true }, { scgi: '9002' }, TRANSPORTS)).toEqual({ scgi: '9002' });
  });
});

describe('loadConfigFile', () => {
  it('reads JSON, JavaScript and TypeScript modules', async () => {
    await writeFile(join(dir, 'a.json'), JSON.stringify({ app: 'app.ts', workers: 2 }));
    await writeFile(join(dir, 'b.mjs'), 'export default { "max-body": "1k", reload: true };\n');
    await writeFile(join(dir, 'c.ts'), 'const port: number = 8123;\nexport default { http: `127.0.0.1:${port}` };\n');
    await writeFile(join(dir, 'd.cjs'), 'module.exports = { timeout: 5 };\n');
    expect(await loadConfigFile(join(dir, 'a.json'), SERVE_OPTIONS)).toEqual({ path: join(dir, 'a.json'), app: join(dir, 'app.ts'), values: { workers: '2' } });
    expect((await loadConfigFile(join(dir, 'b.mjs'), SERVE_OPTIONS)).values).toEqual({ 'max-body': '1k', reload: true });
    expect((await loadConfigFile(join(dir, 'c.ts'), SERVE_OPTIONS)).values).toEqual({ http: '127.0.0.1:8123' });
    expect((await loadConfigFile(join(dir, 'd.cjs'), SERVE_OPTIONS)).values).toEqual({ timeout: '5' });
  });

  it('reports a missing file, bad JSON and a module without a default export', async () => {
    await expect(loadConfigFile(join(dir, 'none.json'), SERVE_OPTIONS)).rejects.toThrow(/cannot read the config file \(.*none\.json: ENOENT\)/);
    await writeFile(join(dir, 'bad.json'), '{"workers": 2,}');
    await expect(loadConfigFile(join(dir, 'bad.json'), SERVE_OPTIONS)).rejects.toThrow(/bad\.json is not valid JSON/);
    await writeFile(join(dir, 'named.mjs'), 'export const http = "8000";\n');
    await expect(loadConfigFile(join(dir, 'named.mjs'), SERVE_OPTIONS)).rejects.toThrow(/has no default export/);
    await expect(loadConfigFile(join(dir, 'none.mjs'), SERVE_OPTIONS)).rejects.toThrow(/cannot load the config module/);
  });
});



describe('tsgi serve --config (the built command)', () => {
  it('serves what the file says, with command-line flags overriding it', async () => {
    const filePort = await freePort();
    const cliPort = await freePort();
    const config = join(dir, 'serve.json');
    await writeFile(config, JSON.stringify({ app: HELLO, http: `127.0.0.1:${filePort}`, workers: 0, mount: '/site', 'access-log': 'access.log' }));
    const child = execa('node', [BIN, 'serve', '-c', config, '--http', `127.0.0.1:${cliPort}`], { reject: false });
    try {
      const lines = await waitForLine(child, /access log/);
      expect(lines).toContain(`over HTTP at http://127.0.0.1:${cliPort}/`);
      expect(lines).toContain(`tsgi: mount /site; access log ${join(dir, 'access.log')}`);
      const response = await fetch(`http://127.0.0.1:${cliPort}/site/x`);
      expect(await response.text()).toBe('Hello from tsgi! You asked for /site/x\n');
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });

  it('a bad file is a usage error naming the key', async () => {
    const config = join(dir, 'wrong.json');
    await writeFile(config, JSON.stringify({ app: HELLO, 'max-requests': [1] }));
    const result = await execa('node', [BIN, 'serve', '--config', config], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(`tsgi serve: config ${config}: "max-requests" must be a string or a number (got an array)`);
    const noApp = join(dir, 'no-app.json');
    await writeFile(noApp, JSON.stringify({ workers: 0 }));
    const missing = await execa('node', [BIN, 'serve', '--config', noApp], { reject: false });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('expected MODULE[:EXPORT] (or "app" in the config file)');
  });
});

describe('the --cgi-bin keys', () => {
  const check = (data: unknown) => checkConfig(data, SERVE_OPTIONS, 'tsgi.json', '/srv/site');

  it('resolves cgi-bin against the file; repeatable keys take a string, a list or an object of NAME: VALUE', () => {
    expect(check({ 'cgi-bin': 'cgi-bin', 'cgi-read-ahead': true }).values).toEqual({ 'cgi-bin': '/srv/site/cgi-bin', 'cgi-read-ahead': true });
    expect(check({ 'cgi-env': 'A=1' }).values).toEqual({ 'cgi-env': ['A=1'] });
    expect(check({ 'cgi-env': ['A=1', 'B=2'] }).values).toEqual({ 'cgi-env': ['A=1', 'B=2'] });
    expect(check({ 'cgi-interpreter': { '.php': '/usr/bin/php-cgi', '.pl': 'perl' } }).values).toEqual({
      'cgi-interpreter': ['.php=/usr/bin/php-cgi', '.pl=perl'],
    });
  });

  it('names the key of a repeatable value of the wrong type', () => {
    expect(() => check({ 'cgi-env': 5 })).toThrow('"cgi-env" must be a string, an array of strings or an object of strings (got 5)');
    expect(() => check({ 'cgi-env': ['A=1', 2] })).toThrow('"cgi-env" must be a string, an array of strings or an object of strings (got an array)');
    expect(() => check({ 'cgi-interpreter': { '.php': 1 } })).toThrow('"cgi-interpreter" must be');
  });

  it('lets the command line replace a repeatable key of the file', () => {
    expect(mergeConfig({ 'cgi-env': ['A=1'] }, { 'cgi-env': ['B=2'] }, TRANSPORTS)).toEqual({ 'cgi-env': ['B=2'] });
  });
});
