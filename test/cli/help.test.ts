import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BUILD_OPTIONS, BUILD_USAGE } from '../../src/cli/build-command.js';
import { CGI_OPTIONS, CGI_USAGE } from '../../src/cli/cgi-command.js';
import { MAIN_USAGE, main } from '../../src/cli/main.js';
import { SERVE_OPTIONS, SERVE_USAGE } from '../../src/cli/serve-command.js';
import { readVersion } from '../../src/version.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');

type Options = Readonly<Record<string, { type: string; short?: string }>>;

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Each option parseArgs accepts must have its own entry: a line starting with "-x, --name" or "--name". */
function undocumented(usage: string, options: Options): string[] {
  const missing: string[] = [];
  for (const [name, spec] of Object.entries(options)) {
    const flag = spec.short ? `-${spec.short}, --${name}` : `--${name}`;
    if (!new RegExp(`^ {2,}${escape(flag)}(?![\\w-])`, 'm').test(usage)) missing.push(flag);
  }
  return missing;
}

function capture(): { io: { stdout: Writable; stderr: Writable }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        append(chunk.toString());
        callback();
      },
    });
  return { io: { stdout: sink((text) => (out += text)), stderr: sink((text) => (err += text)) }, out: () => out, err: () => err };
}

describe('help texts document every flag parseArgs accepts', () => {
  it.each([
    ['serve', SERVE_USAGE, SERVE_OPTIONS],
    ['build', BUILD_USAGE, BUILD_OPTIONS],
    ['cgi', CGI_USAGE, CGI_OPTIONS],
  ] as const)('tsgi %s --help', (_verb, usage, options) => {
    expect(Object.keys(options).length).toBeGreaterThan(3);
    expect(undocumented(usage, options)).toEqual([]);
    // Laid out for an 80-column terminal (+ a little), with examples last.
    for (const line of usage.split('\n')) expect(line.length, line).toBeLessThanOrEqual(112);
    expect(usage).toMatch(/\nExamples:\n(?: {2}tsgi .*\n)+$/);
  });

  it('groups the serve flags and explains detection, signals and the config file', () => {
    for (const heading of ['Transports', 'App:', 'Processes:', 'Limits:', 'Logging:', 'Unix sockets', 'Signals:', 'Config file', 'Examples:']) {
      expect(SERVE_USAGE).toContain(heading);
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGTTIN', 'SIGTTOU']) expect(SERVE_USAGE).toContain(signal);
    expect(SERVE_USAGE).toContain('GATEWAY_INTERFACE');
    expect(SERVE_USAGE).toContain('127.0.0.1:8000');
  });

  it('lists every limit with its default', () => {
    const entry = (flag: string): string => {
      const start = SERVE_USAGE.indexOf(`  ${flag} `);
      expect(start, flag).toBeGreaterThan(0);
      // The entry: its line and the indented lines that continue it.
      const rest = SERVE_USAGE.slice(start + 2);
      const next = rest.search(/\n(?! {20,})/);
      return rest.slice(0, next);
    };
    expect(entry('--max-body')).toMatch(/\(default: no limit\)/);
    expect(entry('--max-connections')).toMatch(/\(default 1024\)/);
    expect(entry('--header-timeout')).toMatch(/\(default 10\)/);
    expect(entry('--body-timeout')).toMatch(/\(default 30\)/);
    expect(entry('--idle-timeout')).toMatch(/\(default 30; HTTP: 5, Node's keepAliveTimeout\)/);
    expect(entry('--graceful-timeout')).toMatch(/\(default 10\)/);
    expect(entry('-t, --timeout')).toMatch(/\(default 0 = no limit\)/);
    expect(SERVE_USAGE).toMatch(/Each refusal at a limit is logged, at most a line per limit every 10 s/);
  });

  it('the README section "The tsgi command" lists every flag of every verb', async () => {
    const readme = await readFile(join(process.cwd(), 'README.md'), 'utf8');
    const start = readme.indexOf('\n## The tsgi command');
    expect(start).toBeGreaterThan(0);
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end < 0 ? undefined : end);
    const missing: string[] = [];
    for (const [verb, options] of [['serve', SERVE_OPTIONS], ['build', BUILD_OPTIONS], ['cgi', CGI_OPTIONS]] as const) {
      for (const name of Object.keys(options)) {
        if (!new RegExp(`--${escape(name)}(?![\\w-])`).test(section)) missing.push(`${verb} --${name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('tsgi main', () => {
  it('--help, -h and help print the command list; no command is a usage error', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const { io, out } = capture();
      expect(await main(argv, io)).toBe(0);
      expect(out()).toBe(MAIN_USAGE);
    }
    for (const verb of ['serve', 'build', 'cgi', 'help']) expect(MAIN_USAGE).toMatch(new RegExp(`^ {2}${verb} `, 'm'));
    const none = capture();
    expect(await main([], none.io)).toBe(2);
    expect(none.err()).toBe(MAIN_USAGE);
    const unknown = capture();
    expect(await main(['sever'], unknown.io)).toBe(2);
    expect(unknown.err()).toContain('tsgi: unknown command "sever"');
  });

  it('help COMMAND prints the same text as COMMAND --help', async () => {
    const serve = capture();
    expect(await main(['help', 'serve'], serve.io)).toBe(0);
    expect(serve.out()).toBe(SERVE_USAGE);
    const serveHelp = capture();
    expect(await main(['serve', '--help'], serveHelp.io)).toBe(0);
    expect(serveHelp.out()).toBe(SERVE_USAGE);
    const build = capture();
    expect(await main(['help', 'build'], build.io)).toBe(0);
    expect(build.out()).toBe(BUILD_USAGE);
    const buildHelp = capture();
    expect(await main(['build', '-h'], buildHelp.io)).toBe(0);
    expect(buildHelp.out()).toBe(BUILD_USAGE);
    const cgi = capture();
    expect(await main(['help', 'cgi'], cgi.io)).toBe(0);
    expect(cgi.out()).toBe(CGI_USAGE);
    const bad = capture();
    expect(await main(['help', 'nope'], bad.io)).toBe(2);
    expect(bad.err()).toContain('no such command "nope"');
  });

  it('--version, -v and version print the package version', async () => {
    const { version } = JSON.parse(await readFile(join(process.cwd(), 'package.json'), 'utf8')) as { version: string };
    expect(readVersion()).toBe(version);
    for (const argv of [['--version'], ['-v'], ['version']]) {
      const { io, out } = capture();
      expect(await main(argv, io)).toBe(0);
      expect(out()).toBe(`tsgi ${version}\n`);
    }
  });

  it('the built command prints the same texts', async () => {
    expect((await execa('node', [BIN, 'serve', '--help'])).stdout).toBe(SERVE_USAGE.trimEnd());
    expect((await execa('node', [BIN, 'cgi', '--help'])).stdout).toBe(CGI_USAGE.trimEnd());
    const usage = await execa('node', [BIN, 'serve', '--bogus'], { reject: false });
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain("tsgi serve: Unknown option '--bogus'");
    expect(usage.stderr).toContain('tsgi serve --help');
  });
});
