/**
 * A multipart/form-data request body (RFC 7578) built from curl-style `-F` fields, for `tsgi cgi -F`:
 * `name=value`, `name=@file` (a file upload: filename and Content-Type parts), `name=<file` (a plain field whose
 * value is the file's content), each optionally followed by `;type=mime/type` and `;filename=name`. A value
 * holding ";" or starting with '"' is written in double quotes (`name="a;b"`, backslash escapes '"' and "\").
 */
import { randomBytes } from 'node:crypto';
import { basename, extname } from 'node:path';

/** One `-F` field, parsed. */
export interface FormField {
  name: string;
  /** The value, or the path of the file holding it. */
  value: string;
  /** `@file`: an upload; `<file`: a plain field read from a file; `text`: the value itself. */
  source: 'text' | 'upload' | 'file-content';
  /** `;type=`: the part's Content-Type. */
  type?: string;
  /** `;filename=`: the file name sent (an upload's default is the file's base name). */
  filename?: string;
}

/** A field that can't be parsed; the message says why. */
export class FormFieldError extends Error {
  override name = 'FormFieldError';
}

/** Content types guessed from a file's extension when `;type=` gives none, as curl does; else application/octet-stream. */
const TYPES_BY_EXTENSION: Readonly<Record<string, string>> = {
  '.gif': 'image/gif',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain',
  '.htm': 'text/html',
  '.html': 'text/html',
  '.pdf': 'application/pdf',
  '.xml': 'application/xml',
  '.json': 'application/json',
};

/** Parses one `-F` argument. Throws a FormFieldError for a missing "=" or name, a bad quote, an unknown `;param`. */
export function parseFormField(spec: string): FormField {
  const equals = spec.indexOf('=');
  if (equals <= 0) throw new FormFieldError(`-F must read name=value, name=@file or name=<file (${spec})`);
  const name = spec.slice(0, equals);
  let rest = spec.slice(equals + 1);
  let source: FormField['source'] = 'text';
  if (rest.startsWith('@')) source = 'upload';
  else if (rest.startsWith('<')) source = 'file-content';
  if (source !== 'text') rest = rest.slice(1);
  const first = readWord(rest, spec);
  const field: FormField = { name, value: first.word, source };
  rest = rest.slice(first.length);
  while (rest !== '') {
    // rest starts with ";" here: readWord stops at one.
    rest = rest.slice(1).replace(/^[ \t]+/, '');
    const keyEnd = rest.indexOf('=');
    const key = keyEnd < 0 ? rest : rest.slice(0, keyEnd);
    if (keyEnd < 0 || (key !== 'type' && key !== 'filename')) {
      throw new FormFieldError(`-F knows ;type= and ;filename= (${spec}); quote a value holding ";": name="a;b"`);
    }
    rest = rest.slice(keyEnd + 1);
    const param = readWord(rest, spec);
    rest = rest.slice(param.length);
    if (key === 'type') {
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*;.*)?$/.test(param.word) || /[\r\n\0]/.test(param.word)) {
        throw new FormFieldError(`-F ;type= must be a media type like text/plain (${param.word})`);
      }
      field.type = param.word;
    } else {
      field.filename = param.word;
    }
  }
  return field;
}

/** Reads a value up to the next ";" (or a double-quoted one, backslash escaping '"' and "\"). */
function readWord(text: string, spec: string): { word: string; length: number } {
  if (!text.startsWith('"')) {
    const end = text.indexOf(';');
    return end < 0 ? { word: text, length: text.length } : { word: text.slice(0, end), length: end };
  }
  let word = '';
  for (let i = 1; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) {
      word += text[i + 1];
      i++;
    } else if (ch === '"') {
      const after = text.slice(i + 1);
      if (after !== '' && !after.startsWith(';')) throw new FormFieldError(`-F: text after a closing quote (${spec})`);
      return { word, length: i + 1 };
    } else {
      word += ch;
    }
  }
  throw new FormFieldError(`-F: a quote is not closed (${spec})`);
}

/** A built body and the Content-Type header that goes with it. */
export interface MultipartBody {
  body: Buffer;
  /** `multipart/form-data; boundary=...` */
  contentType: string;
  boundary: string;
}

/**
 * Builds the multipart/form-data body of `fields`, in order, with a fresh random boundary that appears in no
 * part. `readFile` reads the files of `@file` and `<file` fields (their whole content goes into the body).
 */
export async function buildMultipartBody(fields: readonly FormField[], readFile: (path: string) => Promise<Buffer>): Promise<MultipartBody> {
  const parts: Array<{ head: string; content: Buffer }> = [];
  for (const field of fields) {
    const content = field.source === 'text' ? Buffer.from(field.value, 'utf8') : await readFile(field.value);
    const filename = field.filename ?? (field.source === 'upload' ? basename(field.value) : undefined);
    let head = `Content-Disposition: form-data; name="${escapeQuoted(field.name)}"`;
    if (filename !== undefined) head += `; filename="${escapeQuoted(filename)}"`;
    head += '\r\n';
    const type = field.type ?? (field.source === 'upload' ? (TYPES_BY_EXTENSION[extname(field.value).toLowerCase()] ?? 'application/octet-stream') : undefined);
    if (type !== undefined) head += `Content-Type: ${type}\r\n`;
    parts.push({ head, content });
  }
  let boundary = newBoundary();
  // A boundary must not occur in any part (RFC 2046 §5.1.1); with 96 random bits it practically never does.
  while (parts.some((part) => part.content.includes(boundary))) boundary = newBoundary();
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.head}\r\n`, 'utf8'), part.content, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}`, boundary };
}

function newBoundary(): string {
  return `------------------------${randomBytes(12).toString('hex')}`;
}

/** A name or file name inside a quoted header parameter: '"', CR and LF percent-encoded (as browsers and curl do). */
function escapeQuoted(text: string): string {
  return text.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
