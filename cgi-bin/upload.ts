import { createHash } from 'node:crypto';
import { runWithCgi, type App, type StartResponse } from 'tsgi';

/**
 * Receives an upload and answers JSON: the request's Content-Type, the byte count and sha256 of the raw body
 * (hashed as it streams in), and for multipart/form-data each part's name, filename, Content-Type, size and
 * sha256. The body is kept in memory to split the parts, so it is bounded by MAX_UPLOAD_BYTES (413 above it,
 * checked against CONTENT_LENGTH before reading anything). An example only: real apps use a streaming parser.
 */
const MAX_UPLOAD_BYTES = 32 * 1024 * 1024;

interface PartSummary {
  name: string | null;
  filename: string | null;
  contentType: string | null;
  bytes: number;
  sha256: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Returns the boundary parameter of a multipart Content-Type, or null. */
function boundaryOf(contentType: string): string | null {
  if (!/^multipart\/form-data\s*;/i.test(contentType)) return null;
  const match = /;\s*boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(contentType);
  return match ? (match[1] ?? match[2] ?? null) : null;
}

/** Parses the header block of one part (RFC 7578 §4): Content-Disposition name/filename and Content-Type. */
function parsePartHead(head: string): Omit<PartSummary, 'bytes' | 'sha256'> {
  let name: string | null = null;
  let filename: string | null = null;
  let contentType: string | null = null;
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const field = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (field === 'content-type') contentType = value;
    if (field === 'content-disposition') {
      name = /;\s*name="([^"]*)"/i.exec(value)?.[1] ?? null;
      filename = /;\s*filename="([^"]*)"/i.exec(value)?.[1] ?? null;
    }
  }
  return { name, filename, contentType };
}

/** Splits a multipart body at its boundary lines (RFC 2046 §5.1.1). Throws on a body that doesn't follow it. */
function splitParts(body: Buffer, boundary: string): PartSummary[] {
  const opening = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  let position = body.indexOf(opening);
  if (position !== 0 && (position < 2 || body.subarray(position - 2, position).toString('latin1') !== '\r\n')) {
    throw new Error('upload.cgi: multipart body does not start with its boundary');
  }
  position += opening.length;
  const parts: PartSummary[] = [];
  for (;;) {
    if (body.subarray(position, position + 2).toString('latin1') === '--') return parts;
    if (body.subarray(position, position + 2).toString('latin1') !== '\r\n') {
      throw new Error('upload.cgi: boundary line not followed by CRLF');
    }
    const headStart = position + 2;
    const headEnd = body.indexOf('\r\n\r\n', headStart, 'latin1');
    if (headEnd < 0) throw new Error('upload.cgi: part header block never ends');
    const next = body.indexOf(delimiter, headEnd + 4);
    if (next < 0) throw new Error('upload.cgi: closing boundary missing');
    const content = body.subarray(headEnd + 4, next);
    parts.push({
      ...parsePartHead(body.subarray(headStart, headEnd).toString('latin1')),
      bytes: content.length,
      sha256: sha256(content),
    });
    position = next + delimiter.length;
  }
}

function reply(startResponse: StartResponse, status: string, value: unknown): string[] {
  startResponse(status, [['Content-Type', 'application/json; charset=utf-8']]);
  return [`${JSON.stringify(value)}\n`];
}

const app: App = async (environ, startResponse) => {
  if (environ.REQUEST_METHOD !== 'POST') {
    return reply(startResponse, '405 Method Not Allowed', { error: 'POST a multipart/form-data body' });
  }
  const declared = Number(environ.CONTENT_LENGTH ?? '0');
  if (declared > MAX_UPLOAD_BYTES) {
    return reply(startResponse, '413 Content Too Large', { error: `limit is ${MAX_UPLOAD_BYTES} bytes` });
  }
  const contentType = environ.CONTENT_TYPE ?? '';
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of environ['tsgi.input']) {
    hash.update(chunk);
    chunks.push(Buffer.from(chunk));
    total += chunk.length;
  }
  const boundary = boundaryOf(contentType);
  let parts: PartSummary[] = [];
  if (boundary !== null) {
    try {
      parts = splitParts(Buffer.concat(chunks, total), boundary);
    } catch (error) {
      environ['tsgi.errors'].write(`${(error as Error).message}\n`);
      return reply(startResponse, '400 Bad Request', { error: (error as Error).message });
    }
  }
  return reply(startResponse, '200 OK', { contentType, bytes: total, sha256: hash.digest('hex'), parts });
};

void runWithCgi(app);
