import type { Server } from 'node:net';
import { parseArgs } from 'node:util';
import { normalizeMount } from '../environ/mount.js';
import { SHUTDOWN_TIMEOUT_MS } from '../servers/http-serve.js';
import { describeListenTarget, hasInheritedListenSocket, listenOn, parseListenTarget, type ListenTarget } from '../servers/listen.js';
import type { App } from '../types.js';
import { loadApp } from './load-app.js';

const USAGE = `usage: tsgi serve MODULE[:EXPORT] [--http ADDR | --fastcgi ADDR | --scgi ADDR | --uwsgi ADDR] [options]

Loads the app exported by MODULE (TypeScript or JavaScript; the default export, else "app", else EXPORT)
and serves it. The transport is the flag given; without one: FastCGI when started by a web server with a
listening socket on fd 0 (mod_fcgid, lighttpd bin-path, spawn-fcgi), else HTTP on 127.0.0.1:8000.

  --http ADDR           serve HTTP on HOST:PORT (":8080" or "8080" keep host 127.0.0.1)
  --fastcgi ADDR        serve FastCGI on HOST:PORT, unix:/path/app.sock, or fd:0 (an inherited socket)
  --scgi ADDR           serve SCGI (one request per connection) on HOST:PORT, unix:/path/app.sock, or fd:0
  --uwsgi ADDR          serve the uwsgi protocol (one request per connection) on HOST:PORT, unix:PATH, or fd:0
  --mount PREFIX        the app's mount point: SCRIPT_NAME = PREFIX, PATH_INFO = the rest of the request path
                        (FastCGI, SCGI, uwsgi: rebuilt from REQUEST_URI whatever split the web server made;
                        use "/" for an app at the root of a site)
  --socket-mode MODE    unix socket file mode, octal (e.g. 660)
  --socket-owner USER   unix socket owner (name or uid)
  --socket-group GROUP  unix socket group (name or gid)
  -h, --help            this help

SIGINT/SIGTERM stop accepting connections and exit once in-flight requests finish (at most ${SHUTDOWN_TIMEOUT_MS / 1000} s).
`;

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** The `tsgi serve` verb. Resolves with the exit status on a usage error or failure to start; else serves. */
export async function runServeCommand(args: string[], io: Io = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        http: { type: 'string' },
        fastcgi: { type: 'string' },
        scgi: { type: 'string' },
        uwsgi: { type: 'string' },
        mount: { type: 'string' },
        'socket-mode': { type: 'string' },
        'socket-owner': { type: 'string' },
        'socket-group': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr.write(`tsgi serve: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const values = parsed.values;
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [reference, ...rest] = parsed.positionals;
  if (!reference || rest.length > 0) {
    io.stderr.write(`tsgi serve: expected one MODULE[:EXPORT]\n${USAGE}`);
    return 2;
  }
  if (values.http !== undefined && values.fastcgi !== undefined) {
    io.stderr.write(`tsgi serve: --http and --fastcgi exclude each other\n${USAGE}`);
    return 2;
  }
  // SCGI / uwsgi (issue 4): one transport flag at most.
  const gatewayFlags = (['http', 'fastcgi', 'scgi', 'uwsgi'] as const).filter((flag) => values[flag] !== undefined);
  if (gatewayFlags.length > 1) {
    io.stderr.write(`tsgi serve: ${gatewayFlags.map((flag) => `--${flag}`).join(' and ')} exclude each other\n${USAGE}`);
    return 2;
  }
  let target: ListenTarget;
  let transport: 'HTTP' | 'FastCGI' | 'SCGI' | 'uwsgi';
  let mount: string | undefined;
  let mode: number | undefined;
  let app: App;
  try {
    if (values.fastcgi !== undefined) {
      transport = 'FastCGI';
      target = parseListenTarget(values.fastcgi);
    } else if (values.scgi !== undefined) {
      transport = 'SCGI';
      target = parseListenTarget(values.scgi);
    } else if (values.uwsgi !== undefined) {
      transport = 'uwsgi';
      target = parseListenTarget(values.uwsgi);
    } else if (values.http !== undefined) {
      transport = 'HTTP';
      target = parseListenTarget(values.http);
    } else if (hasInheritedListenSocket()) {
      transport = 'FastCGI';
      target = { kind: 'fd', fd: 0 };
    } else {
      transport = 'HTTP';
      target = parseListenTarget('127.0.0.1:8000');
    }
    if (transport === 'HTTP' && target.kind !== 'tcp') throw new Error('tsgi serve: --http takes HOST:PORT');
    mount = values.mount === undefined ? undefined : normalizeMount(values.mount);
    if (values['socket-mode'] !== undefined) {
      if (!/^[0-7]{3,4}$/.test(values['socket-mode'])) throw new Error(`tsgi serve: --socket-mode is octal, like 660 (${values['socket-mode']})`);
      mode = Number.parseInt(values['socket-mode'], 8);
    }
    app = await loadApp(reference);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }

  let server: Server;
  let inFlight: () => number;
  if (transport === 'HTTP' && target.kind === 'tcp') {
    const { serveHttp } = await import('../servers/http-serve.js');
    try {
      const serving = await serveHttp(app, {
        host: target.host,
        port: target.port,
        shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
        ...(mount !== undefined ? { scriptName: mount } : {}),
      });
      io.stdout.write(`tsgi: serving ${reference} over HTTP at ${serving.url} (pid ${process.pid})\n`);
    } catch (error) {
      io.stderr.write(`tsgi serve: cannot listen on ${describeListenTarget(target)} (${(error as Error).message})\n`);
      return 1;
    }
    return new Promise<number>(() => {});
  }
  if (transport === 'SCGI' || transport === 'uwsgi') {
    // SCGI / uwsgi (issue 4).
    const gatewayOptions = mount !== undefined ? { mount: mount || '/' } : {};
    const gateway =
      transport === 'SCGI'
        ? (await import('../servers/scgi.js')).createScgiServer(app, gatewayOptions)
        : (await import('../servers/uwsgi.js')).createUwsgiServer(app, gatewayOptions);
    server = gateway;
    inFlight = () => gateway.activeRequests;
  } else {
    const { createFastCgiServer } = await import('../servers/fastcgi.js');
    const fastcgi = createFastCgiServer(app, mount !== undefined ? { mount: mount || '/' } : {});
    server = fastcgi;
    inFlight = () => fastcgi.activeRequests;
  }
  try {
    await listenOn(server, target, {
      ...(mode !== undefined ? { mode } : {}),
      ...(values['socket-owner'] !== undefined ? { owner: values['socket-owner'] } : {}),
      ...(values['socket-group'] !== undefined ? { group: values['socket-group'] } : {}),
    });
  } catch (error) {
    io.stderr.write(`tsgi serve: cannot listen on ${describeListenTarget(target)} (${(error as Error).message})\n`);
    return 1;
  }
  io.stdout.write(`tsgi: serving ${reference} over ${transport} at ${describeListenTarget(target, server)} (pid ${process.pid})\n`);
  installShutdown(server, inFlight, io.stderr);
  return new Promise<number>(() => {});
}

/** SIGINT/SIGTERM: stop accepting, exit when no request is in flight (or after SHUTDOWN_TIMEOUT_MS). */
function installShutdown(server: Server, inFlight: () => number, stderr: NodeJS.WritableStream): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    process.once(signal, () => process.exit(1));
    stderr.write(`tsgi: ${signal} received, finishing in-flight requests\n`);
    server.close();
    setTimeout(() => process.exit(0), SHUTDOWN_TIMEOUT_MS).unref();
    const poll = setInterval(() => {
      if (inFlight() === 0) process.exit(0);
    }, 20);
    poll.unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}
