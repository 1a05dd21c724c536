import { connect, type Server } from 'node:net';

// Not `import ... from 'node:fs'` (or node:fs/promises): in an ES module that reads every export of fs and loads
// fs/promises, readline and the streams, about 2 MiB of a `tsgi serve` master's RSS; fs.promises is read when used.
const fs = process.getBuiltinModule('node:fs');
const { fstatSync, readFileSync, readlinkSync, unlinkSync } = fs;

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
  // An inherited socket is already bound and listening; Node issues listen(2) on it again (only the backlog
  // changes: see socketActivationTarget), so ask for as deep a queue as the kernel allows.
  if (target.kind === 'fd') return listenOnce(server, { fd: target.fd, backlog: inheritedBacklog() });
  try {
    await listenOnce(server, { path: target.path });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    if (await isSocketAlive(target.path)) throw new Error(`tsgi: unix socket in use by another server (${target.path})`);
    await fs.promises.unlink(target.path);
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
  await applyUnixSocketOptions(path, unix);
}

/** Gives the unix socket file at `path` the mode, owner and group of `unix` (names looked up like chown(1)). */
export async function applyUnixSocketOptions(path: string, unix: UnixSocketOptions): Promise<void> {
  if (unix.mode !== undefined) await fs.promises.chmod(path, unix.mode);
  if (unix.owner !== undefined || unix.group !== undefined) {
    const uid = unix.owner === undefined ? -1 : await resolveId(unix.owner, '/etc/passwd');
    const gid = unix.group === undefined ? -1 : await resolveId(unix.group, '/etc/group');
    await fs.promises.chown(path, uid, gid);
  }
}

function listenOnce(server: Server, options: { host?: string; port?: number; path?: string; fd?: number; backlog?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    // For a descriptor Node reads the backlog only from the second argument (options.backlog is ignored).
    if (options.fd !== undefined) server.listen({ fd: options.fd }, options.backlog, onListening);
    else server.listen(options, onListening);
  });
}

/** True when a server accepts connections on the unix socket at `path` (else the file is a stale leftover). */
export function isSocketAlive(path: string): Promise<boolean> {
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
  const text = await fs.promises.readFile(database, 'utf8');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === value && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new Error(`tsgi: no such ${database.endsWith('group') ? 'group' : 'user'} (${value})`);
}

/** The first descriptor systemd passes (SD_LISTEN_FDS_START in sd-daemon.h); the next ones follow in order. */
export const SD_LISTEN_FDS_START = 3;

/** What a descriptor turned out to be (from fstat and /proc; see inspectDescriptor). */
export interface DescriptorInfo {
  /**
   * `listening`: a stream socket in the listening state, ready to accept; `connected`: a stream socket that is
   * not listening; `datagram`: UDP, or a unix datagram or seqpacket socket; `socket`: a socket /proc could not
   * classify (another family, or /proc unavailable): given the benefit of the doubt; `not-socket`: a file, pipe
   * or terminal; `closed`: no such descriptor.
   */
  kind: 'listening' | 'connected' | 'datagram' | 'socket' | 'not-socket' | 'closed';
  /** In words, for error messages: "a listening TCP socket", "a regular file", ... */
  description: string;
}

/**
 * Finds out what descriptor `fd` of this process is: fstat(2) tells a socket from anything else, then the
 * socket's inode (the /proc/self/fd/N link) is looked up in /proc/self/net/{tcp,tcp6,unix,udp,udp6} for its
 * type and state. Linux only in its detail; elsewhere a socket is reported as `socket` (unclassified).
 */
export function inspectDescriptor(fd: number): DescriptorInfo {
  let stats;
  try {
    stats = fstatSync(fd);
  } catch {
    return { kind: 'closed', description: 'not an open descriptor' };
  }
  if (!stats.isSocket()) {
    const what = stats.isFile() ? 'a regular file' : stats.isFIFO() ? 'a pipe' : stats.isCharacterDevice() ? 'a character device (a terminal or /dev/null)' : stats.isDirectory() ? 'a directory' : 'not a socket';
    return { kind: 'not-socket', description: what };
  }
  let inode: string;
  try {
    const link = readlinkSync(`/proc/self/fd/${fd}`);
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (!match) return { kind: 'socket', description: 'a socket' };
    inode = match[1] as string;
  } catch {
    return { kind: 'socket', description: 'a socket' };
  }
  for (const [table, family] of [['tcp', 'TCP'], ['tcp6', 'TCP (IPv6)']] as const) {
    const row = findProcNetRow(table, 9, inode);
    // Column 3 is the TCP state: 0A = LISTEN.
    if (row) return row[3] === '0A' ? { kind: 'listening', description: `a listening ${family} socket` } : { kind: 'connected', description: `a ${family} socket that is not listening` };
  }
  for (const [table, family] of [['udp', 'UDP'], ['udp6', 'UDP (IPv6)']] as const) {
    if (findProcNetRow(table, 9, inode)) return { kind: 'datagram', description: `a ${family} socket` };
  }
  // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path. Type 0001 = stream; Flags 00010000 =
  // __SO_ACCEPTCON, set once listen(2) was called.
  const unix = findProcNetRow('unix', 6, inode);
  if (unix) {
    if (unix[4] !== '0001') return { kind: 'datagram', description: `a unix ${unix[4] === '0005' ? 'seqpacket' : 'datagram'} socket` };
    return (Number.parseInt(unix[3] ?? '0', 16) & 0x10000) !== 0
      ? { kind: 'listening', description: 'a listening unix socket' }
      : { kind: 'connected', description: 'a unix stream socket that is not listening' };
  }
  return { kind: 'socket', description: 'a socket' };
}

/** The whitespace-split row of /proc/self/net/TABLE whose column `column` is `value`, if any. */
function findProcNetRow(table: string, column: number, value: string): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/self/net/${table}`, 'latin1');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[column] === value) return fields;
  }
  return undefined;
}

/** Options for socketActivationTarget. */
export interface SocketActivationOptions {
  /**
   * Use the socket systemd named NAME (`FileDescriptorName=` in the .socket unit, passed in LISTEN_FDNAMES)
   * instead of the first one.
   */
  name?: string;
  /**
   * Throw an Error saying why when this process was not socket-activated (instead of returning undefined):
   * for `tsgi serve --fastcgi systemd`, where the user asked for the socket.
   */
  required?: boolean;
  /** Where a warning goes (several sockets passed and none chosen by name). Default: stderr. */
  warn?: (line: string) => void;
  /** How a descriptor is checked (tests replace it). Default: inspectDescriptor. */
  inspect?: (fd: number) => DescriptorInfo;
}

/**
 * The listening socket systemd passed by socket activation, as an `fd` target, or undefined when this process
 * was not socket-activated. The protocol (sd_listen_fds(3)): systemd opens the sockets of the .socket unit,
 * starts the service with them as descriptors 3, 4, ... and sets LISTEN_FDS (how many), LISTEN_PID (the pid
 * they are meant for: a wrapper process such as npx, or a shell that does not exec, gets them but must not
 * use them) and optionally LISTEN_FDNAMES (their FileDescriptorName=s, colon-separated).
 *
 * - LISTEN_PID must be `pid` and LISTEN_FDS at least 1; otherwise undefined (or an Error with the reason
 *   when `options.required`).
 * - With several sockets the first is used and a warning says so, unless `options.name` picks one by name.
 * - The descriptor must be a listening stream socket (ListenStream=, TCP or unix); anything else is an Error
 *   naming what it is.
 * - LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed from `env` in every case (as sd_listen_fds(1) does),
 *   so no child process (a worker, a program the app runs) takes them for its own.
 *
 * tsgi never binds the socket. Node cannot use a descriptor without issuing listen(2) on it again
 * (net.Server#listen({ fd }) -> libuv uv_listen, observed with strace: `listen(3, 511)` and no bind). On Linux
 * a second listen() on a listening socket only sets its backlog: the socket stays bound and listening, and
 * connections already queued (the one that made systemd start us) stay queued and are served. What it would
 * change is the backlog: Node's default 511 in place of systemd's (Backlog=, SOMAXCONN = 4096 by default), so
 * listenOn passes net.core.somaxconn, the most the kernel allows (see inheritedBacklog). A Backlog= below it in
 * the .socket unit is therefore raised to it; one above it was clamped by the kernel anyway.
 *
 * Run this in the process systemd started (with `tsgi serve`'s master + workers, the master: it keeps the
 * descriptor and passes it to each worker, which accepts on it).
 */
export function socketActivationTarget(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
  options: SocketActivationOptions = {},
): ListenTarget | undefined {
  const pidText = env.LISTEN_PID;
  const fdsText = env.LISTEN_FDS;
  const namesText = env.LISTEN_FDNAMES;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  const notActivated = (reason: string): undefined => {
    if (options.required) throw new Error(`tsgi: no socket from systemd: ${reason}`);
    return undefined;
  };

  if (pidText === undefined || fdsText === undefined) {
    return notActivated(
      'LISTEN_PID and LISTEN_FDS are not set (start tsgi from a .service unit that has a matching .socket unit, or under systemd-socket-activate)',
    );
  }
  if (!/^[0-9]+$/.test(pidText.trim()) || Number(pidText) !== pid) {
    return notActivated(
      `LISTEN_PID=${pidText} names another process than this one (pid ${pid}): ExecStart= must run tsgi itself ` +
        '(node, or the tsgi script), not through npx or a shell script that does not exec it',
    );
  }
  if (!/^[0-9]+$/.test(fdsText.trim())) throw new Error(`tsgi: LISTEN_FDS=${fdsText} is not a number of descriptors`);
  const count = Number(fdsText);
  if (count === 0) return notActivated('systemd passed no sockets (LISTEN_FDS=0)');
  const names = namesText === undefined ? undefined : namesText.split(':');
  const nameOf = (index: number): string => (names && names.length === count ? ` ("${names[index]}")` : '');

  let index = 0;
  if (options.name !== undefined) {
    if (!names || names.length !== count) {
      throw new Error(
        `tsgi: the socket named "${options.name}" was asked for, but systemd passed ${count} socket(s) without ` +
          `names to match (LISTEN_FDNAMES=${namesText ?? 'unset'}; set FileDescriptorName= in the .socket unit)`,
      );
    }
    index = names.indexOf(options.name);
    if (index < 0) throw new Error(`tsgi: systemd passed no socket named "${options.name}" (LISTEN_FDNAMES=${namesText})`);
  } else if (count > 1) {
    (options.warn ?? ((line: string) => process.stderr.write(line)))(
      `tsgi: systemd passed ${count} sockets (fd ${SD_LISTEN_FDS_START}-${SD_LISTEN_FDS_START + count - 1}); ` +
        `serving on the first, fd ${SD_LISTEN_FDS_START}${nameOf(0)}; nothing accepts on the others\n`,
    );
  }
  const fd = SD_LISTEN_FDS_START + index;
  const info = (options.inspect ?? inspectDescriptor)(fd);
  if (info.kind !== 'listening' && info.kind !== 'socket') {
    throw new Error(
      `tsgi: fd ${fd}${nameOf(index)} from systemd is not a listening stream socket but ${info.description} ` +
        '(tsgi needs ListenStream= in the .socket unit, and Accept=no)',
    );
  }
  return { kind: 'fd', fd };
}

/**
 * The backlog tsgi asks for on an inherited socket: net.core.somaxconn, the kernel's ceiling (4096 since
 * Linux 5.4), so that the listen(2) Node issues keeps the queue as deep as systemd (Backlog=SOMAXCONN) or a
 * web server made it; Node's default, 511, when /proc cannot tell.
 */
export function inheritedBacklog(readText: (path: string) => string = readLatin1): number {
  try {
    const value = Number(readText('/proc/sys/net/core/somaxconn').trim());
    return Number.isSafeInteger(value) && value > 0 ? Math.min(value, 0x7fffffff) : NODE_DEFAULT_BACKLOG;
  } catch {
    return NODE_DEFAULT_BACKLOG;
  }
}

const NODE_DEFAULT_BACKLOG = 511;

function readLatin1(path: string): string {
  return readFileSync(path, 'latin1');
}
