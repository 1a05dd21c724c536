import { runWithCgi, type App, type Header, type InputStream } from 'tsgi';

/**
 * Streams the request body back byte for byte, with the request's Content-Type (and its Content-Length when
 * the request had one). Nothing is buffered: each chunk read from `tsgi.input` is written before the next
 * read, so memory stays flat whatever the size.
 *
 * Caveat (Apache mod_cgi and mod_cgid): Apache writes the whole request body to the script before it reads
 * any output, so a script that answers while still reading deadlocks once the pipes fill (about 64 KiB
 * each way) until Apache's Timeout. `?spool=1` therefore reads the whole body first (into memory, bounded by
 * MAX_SPOOL_BYTES) and only then answers: the shape every CGI script has to take behind Apache.
 */
const MAX_SPOOL_BYTES = 64 * 1024 * 1024;

async function* relay(input: InputStream): AsyncGenerator<Uint8Array> {
  for await (const chunk of input) yield chunk;
}

async function spool(input: InputStream): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of input) {
    total += chunk.length;
    if (total > MAX_SPOOL_BYTES) throw new Error(`echo.cgi: body exceeds MAX_SPOOL_BYTES (${total})`);
    // The input may reuse its buffers; keep a copy.
    chunks.push(Uint8Array.prototype.slice.call(chunk));
  }
  return chunks;
}

const app: App = async (environ, startResponse) => {
  const headers: Header[] = [['Content-Type', environ.CONTENT_TYPE ?? 'application/octet-stream']];
  if (environ.CONTENT_LENGTH !== undefined) headers.push(['Content-Length', environ.CONTENT_LENGTH]);
  const input = environ['tsgi.input'];
  if (new URLSearchParams(environ.QUERY_STRING).get('spool') === '1') {
    const chunks = await spool(input);
    startResponse('200 OK', headers);
    return chunks;
  }
  startResponse('200 OK', headers);
  return relay(input);
};

void runWithCgi(app);
