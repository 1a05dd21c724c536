import { createHash } from 'node:crypto';
import { errorHandler, Request, Response, runWithCgi, type App } from 'tsgi';

/**
 * Receives a multipart/form-data (or url-encoded) form through `Request#formData()` and answers JSON: the
 * request's Content-Type and, per field, its name, filename, Content-Type, size and sha256. Limits come from
 * the Request options: over them the client gets 413, a malformed body 400 (errorHandler maps both).
 */
const MAX_FILE_BYTES = 32 * 1024 * 1024;

const upload: App = async (environ, startResponse) => {
  const request = new Request(environ, { maxFileBytes: MAX_FILE_BYTES, maxMultipartBytes: MAX_FILE_BYTES + 1024 * 1024 });
  if (request.method !== 'POST') {
    return Response.json({ error: 'POST a multipart/form-data body' }, { status: 405 })(environ, startResponse);
  }
  const form = await request.formData();
  const parts: Array<{ name: string; filename: string | null; contentType: string | null; bytes: number; sha256: string }> = [];
  for (const [name, value] of form) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : new Uint8Array(await value.arrayBuffer());
    parts.push({
      name,
      filename: typeof value === 'string' ? null : value.name,
      contentType: typeof value === 'string' ? null : value.type || null,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return Response.json({ contentType: request.contentType, parts })(environ, startResponse);
};

void runWithCgi(errorHandler()(upload));
