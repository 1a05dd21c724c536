/**
 * TCP ports for servers a test starts in another process and can only tell a number (nginx, Apache, lighttpd,
 * `tsgi serve`), and a check that the server answering on such a port is the one the test started.
 *
 * Asking the kernel (listen on port 0, close, pass the number on) races: once the probe closes, the kernel may
 * give the same number to the next asker (another test starting a server at the same moment) or use it as the
 * source port of any outgoing connection. A web server that finds its port taken may keep retrying the bind for
 * seconds while the other server answers in its place: CI once saw the Fastify deployment of
 * test/e2e/frameworks.test.ts answer "Hello from koa!". So ports come from below the kernel's ephemeral range,
 * from a block of their own for each vitest worker (VITEST_POOL_ID), each handed out once per process and probed
 * free before it is handed out.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createServer } from 'node:net';

/** Ports per vitest worker's block; the blocks sit just below the ephemeral range. */
const BLOCK_SIZE = 800;
const BLOCKS = 12;

const handedOut = new Set<number>();
let block: { first: number; next: number } | null = null;

/** Ports a test may bind: below net.ipv4.ip_local_port_range, so neither listen(0) nor a client ever takes them. */
async function ownBlock(): Promise<{ first: number; next: number }> {
  if (block) return block;
  let ephemeralLow = 32_768;
  try {
    ephemeralLow = Number((await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)[0]);
  } catch {
    // Not Linux: the usual default.
  }
  const worker = Number(process.env.VITEST_POOL_ID ?? '1');
  const index = (Number.isInteger(worker) && worker > 0 ? worker - 1 : 0) % BLOCKS;
  const first = ephemeralLow - BLOCK_SIZE * (BLOCKS - index);
  // A random start inside the block, so back-to-back runs do not reuse each other's ports at once.
  block = { first, next: first + Math.floor(Math.random() * BLOCK_SIZE) };
  return block;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolveBind) => {
    const server = createServer();
    server.once('error', () => resolveBind(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveBind(true)));
  });
}

/** A TCP port on 127.0.0.1 that no other caller in this run is given and that nothing held when asked. */
export async function freePort(): Promise<number> {
  const own = await ownBlock();
  if (own.first < 1024) throw new Error(`freePort: the ephemeral range starts too low (${own.first + BLOCK_SIZE * BLOCKS})`);
  for (let tried = 0; tried < BLOCK_SIZE; tried++) {
    const port = own.first + ((own.next - own.first + tried) % BLOCK_SIZE);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await canBind(port)) {
      own.next = port + 1;
      return port;
    }
  }
  throw new Error(`freePort: no free port left in ${own.first}-${own.first + BLOCK_SIZE - 1}`);
}

/** The LISTEN sockets on `port` (their inodes), from /proc/net/tcp and tcp6; empty when /proc cannot be read. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (fields.length > 9 && fields[3] === '0A' && fields[1]!.endsWith(`:${hexPort}`)) inodes.add(fields[9]!);
    }
  }
  return inodes;
}

async function parentOf(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/**
 * Whether the socket listening on 127.0.0.1:`port` belongs to process `root` or one of its descendants. Resolves
 * true when that cannot be told (no /proc, or the socket's holder not found), so it only ever rejects a server
 * it has seen to be someone else's.
 */
export async function listenerBelongsTo(port: number, root: number): Promise<boolean> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return true;
  const holders: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) {
        holders.push(Number(entry));
        break;
      }
    }
  }
  if (holders.length === 0) return true;
  for (const holder of holders) {
    for (let pid = holder, hops = 0; pid > 1 && hops < 64; pid = await parentOf(pid), hops++) {
      if (pid === root) return true;
    }
  }
  return false;
}
