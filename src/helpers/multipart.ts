import { Busboy } from '@fastify/busboy';
import { RequestError } from '../errors.js';

/** Limits for parseMultipart, in bytes and counts. */
export interface MultipartLimits {
  maxMultipartBytes: number;
  maxFileBytes: number;
  maxFiles: number;
  maxFields: number;
  maxFieldBytes: number;
}

/**
 * Parses a multipart/form-data body (RFC 7578) streamed from `source` into a FormData, parts in their order,
 * file parts as File objects. Each limit exceeded rejects with a RequestError 413; a malformed body with 400.
 */
export function parseMultipart(source: AsyncIterable<Uint8Array>, contentType: string, options: MultipartLimits): Promise<FormData> {
  return new Promise<FormData>((resolve, reject) => {
    // Slots are reserved when a part starts so the form keeps the parts' order even though files end later.
    const entries: Array<[string, string | File] | undefined> = [];
    const pendingFiles: Array<Promise<void>> = [];
    let failed = false;
    const fail = (error: unknown): void => {
      if (failed) return;
      failed = true;
      reject(error);
    };
    const tooLarge = (what: string, value: number): void => fail(new RequestError(`request: form exceeds ${what} (${value})`, 413));

    let parser: ReturnType<typeof Busboy>;
    try {
      parser = Busboy({
        headers: { 'content-type': contentType },
        limits: {
          fileSize: options.maxFileBytes,
          files: options.maxFiles,
          fields: options.maxFields,
          fieldSize: options.maxFieldBytes,
        },
      });
    } catch (error) {
      fail(new RequestError(`request: bad multipart Content-Type (${(error as Error).message})`, 400, error));
      return;
    }

    parser.on('field', (name, value, nameTruncated, valueTruncated) => {
      if (nameTruncated || valueTruncated) tooLarge('maxFieldBytes', options.maxFieldBytes);
      else entries.push([name, value]);
    });
    parser.on('file', (name, stream, filename, _encoding, mimeType) => {
      const slot = entries.push(undefined) - 1;
      const chunks: Uint8Array<ArrayBuffer>[] = [];
      pendingFiles.push(
        new Promise<void>((done) => {
          stream.on('data', (chunk: Buffer) => chunks.push(new Uint8Array(chunk)));
          stream.on('limit', () => tooLarge('maxFileBytes', options.maxFileBytes));
          stream.on('error', (error: unknown) => fail(new RequestError('request: malformed multipart body (file part)', 400, error)));
          stream.on('end', () => {
            entries[slot] = [name, new File(chunks, filename || 'blob', { type: mimeType })];
            done();
          });
        }),
      );
    });
    parser.on('filesLimit', () => tooLarge('maxFiles', options.maxFiles));
    parser.on('fieldsLimit', () => tooLarge('maxFields', options.maxFields));
    parser.on('error', (error: unknown) => {
      fail(new RequestError(`request: malformed multipart body (${error instanceof Error ? error.message : String(error)})`, 400, error));
    });
    parser.on('finish', () => {
      void Promise.all(pendingFiles).then(() => {
        if (failed) return;
        const form = new FormData();
        for (const entry of entries) if (entry) form.append(entry[0], entry[1]);
        resolve(form);
      });
    });

    void (async () => {
      let total = 0;
      for await (const chunk of source) {
        if (failed) return;
        total += chunk.length;
        if (total > options.maxMultipartBytes) {
          tooLarge('maxMultipartBytes', total);
          return;
        }
        // Everything ends up in memory anyway (File objects), and the byte cap bounds it: no need to wait for drain.
        parser.write(chunk);
      }
      parser.end();
    })().catch(fail);
  });
}

