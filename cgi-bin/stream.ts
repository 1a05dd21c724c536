import { runWithCgi, type App, type ErrorStream } from 'tsgi';

/**
 * Streams `?mib=N` MiB (default 100) of deterministic bytes: byte k of the body is `k % 251`, so a client can
 * check any range without a reference copy. Content-Length is set. The body is an async generator: the core
 * pulls the next chunk only once the previous one was taken by stdout (backpressure), so memory stays flat.
 *
 * Diagnostics on stderr (the web server's error log), each line tagged with `?id=` so a test can find its own:
 * - `stream.cgi[ID]: client went away after N bytes` when `tsgi.signal` fires (the client left; the web server
 *   closed the pipe or sent SIGTERM), after which the generator stops;
 * - `stream.cgi[ID]: done bytes=N maxrss_kib=M` after the last byte, with the process's peak RSS.
 */
const CHUNK_BYTES = 64 * 1024;
const PERIOD = 251;
const DEFAULT_MIB = 100;
const MAX_MIB = 4096;

// One chunk plus one period of the pattern: every chunk is a view into it, at the offset its position needs.
const PATTERN = new Uint8Array(CHUNK_BYTES + PERIOD);
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i % PERIOD;

async function* generate(total: number, signal: AbortSignal, errors: ErrorStream, tag: string): AsyncGenerator<Uint8Array> {
  let sent = 0;
  const onAbort = (): void => errors.write(`${tag}: client went away after ${sent} bytes\n`);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (sent < total) {
      if (signal.aborted) return;
      const size = Math.min(CHUNK_BYTES, total - sent);
      const start = sent % PERIOD;
      yield PATTERN.subarray(start, start + size);
      sent += size;
    }
    errors.write(`${tag}: done bytes=${sent} maxrss_kib=${process.resourceUsage().maxRSS}\n`);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

const app: App = (environ, startResponse) => {
  const query = new URLSearchParams(environ.QUERY_STRING);
  const mib = Number(query.get('mib') ?? DEFAULT_MIB);
  if (!Number.isFinite(mib) || mib < 0 || mib > MAX_MIB) {
    startResponse('400 Bad Request', [['Content-Type', 'text/plain; charset=utf-8']]);
    return [`mib must be a number from 0 to ${MAX_MIB}\n`];
  }
  const total = Math.floor(mib * 1024 * 1024);
  const tag = `stream.cgi[${(query.get('id') ?? '-').replace(/[^\w-]/g, '')}]`;
  startResponse('200 OK', [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Length', String(total)],
  ]);
  return generate(total, environ['tsgi.signal'], environ['tsgi.errors'], tag);
};

void runWithCgi(app);
