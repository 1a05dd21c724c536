import { chmod, chown, readFile, unlink } from 'node:fs/promises';
import { fstatSync, unlinkSync } from 'node:fs';
import { connect, type Server } from 'node:net';

/** Where a gateway server listens. */
export type ListenTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'fd'; fd: number };

/** Options for a unix socket the server creates. */
export interface UnixSocketOptions {
  /** File mode, e.g. 0o660 (the web server's group may connect). Default: as the umask leaves it. */
  mode?: number;
  /** Owner: a user name or uid. */
  owner?: string | number;
  /** Group: a group name or gid. */
  group?: string | number;
}

/**
 * Parses a listen address: "unix:/path/app.sock", "fd:0" (a socket inherited from the web server or systemd),
 * "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT" (host 127.0.0.1). Throws an Error naming a bad value.
 */
export function parseListenTarget(value: string, defaultHost = '127.0.0.1'): ListenTarget {
  const text = value.trim();
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path === '') throw new Error(`tsgi: unix: needs a socket path (${value})`);
    return { kind: 'unix', path };
  }
  if (text.startsWith('fd:')) {
    const fd = /^[0-9]+$/.test(text.slice(3)) ? Number(text.slice(3)) : Number.NaN;
    if (!Number.isSafeInteger(fd)) throw new Error(`tsgi: fd: needs a descriptor number (${value})`);
    return { kind: 'fd', fd };
  }
  let host = defaultHost;
  let portText = text;
  const v6 = /^\[([^\]]+)\]:([0-9]+)$/.exec(text);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2] as string;
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon) || defaultHost;
    portText = text.slice(colon + 1);
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!Number.isInteger(port) || port > 65535 || (host.includes(':') && v6 === null)) {
    throw new Error(`tsgi: bad address, expected HOST:PORT, unix:PATH or fd:N (${value})`);
  }
  return { kind: 'tcp', host, port };
}

/** Formats a target the way parseListenTarget reads it (with the bound port for TCP). */
export function describeListenTarget(target: ListenTarget, server?: Server): string {
  if (target.kind === 'unix') return `unix:${target.path}`;
  if (target.kind === 'fd') return `fd:${target.fd}`;
  const bound = server?.address();
  const port = typeof bound === 'object' && bound ? bound.port : target.port;
  return `${target.host.includes(':') ? `[${target.host}]` : target.host}:${port}`;
}

/**
 * True when fd 0 is a socket and no CGI request is in the environment: how mod_fcgid, lighttpd's `bin-path`
 * and spawn-fcgi hand a FastCGI app its listening socket (conformance C16, field-notes item 12). Under CGI,
 * GATEWAY_INTERFACE is set (and stdin may be a socket too, with mod_cgid).
 */
export function hasInheritedListenSocket(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.GATEWAY_INTERFACE) return false;
  try {
    return fstatSync(0).isSocket();
  } catch {
    return false;
  }
}

/**
 * Starts `server` listening on `target`. A unix socket file left by a dead server is replaced (a live one is
 * an error: "in use"); the socket gets `unix.mode/owner/group`; the file is removed when this server closes
 * (and on exit), by this listener only. Resolves once listening.
 */
export async function listenOn(server: Server, target: ListenTarget, unix: UnixSocketOptions = {}): Promise<void> {
  if (target.kind === 'tcp') return listenOnce(server, { host: target.host, port: target.port });
  if (target.kind === 'fd') return listenOnce(server, { fd: target.fd });
  try {
    await listenOnce(server, { path: target.path });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    if (await isSocketAlive(target.path)) throw new Error(`tsgi: unix socket in use by another server (${target.path})`);
    await unlink(target.path);
    await listenOnce(server, { path: target.path });
  }
  const path = target.path;
  const removeSync = (): void => {
    try {
      unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
  server.once('close', removeSync);
  process.once('exit', removeSync);
  if (unix.mode !== undefined) await chmod(path, unix.mode);
  if (unix.owner !== undefined || unix.group !== undefined) {
    const uid = unix.owner === undefined ? -1 : await resolveId(unix.owner, '/etc/passwd');
    const gid = unix.group === undefined ? -1 : await resolveId(unix.group, '/etc/group');
    await chown(path, uid, gid);
  }
}

function listenOnce(server: Server, options: { host?: string; port?: number; path?: string; fd?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function isSocketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** A numeric id as is; a name looked up in /etc/passwd or /etc/group (Node has no getpwnam). */
async function resolveId(value: string | number, database: string): Promise<number> {
  if (typeof value === 'number') return value;
  if (/^[0-9]+$/.test(value)) return Number(value);
  const text = await readFile(database, 'utf8');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === value && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new Error(`tsgi: no such ${database.endsWith('group') ? 'group' : 'user'} (${value})`);
}

/**
 * The listening socket systemd passed by socket activation (LISTEN_FDS / LISTEN_PID, sd_listen_fds(3)), as a
 * target, or undefined when this process was not socket-activated.
 * TODO(socket activation): not implemented yet; always undefined.
 */
export function socketActivationTarget(_env: NodeJS.ProcessEnv = process.env, _pid: number = process.pid): ListenTarget | undefined {
  return undefined;
}
