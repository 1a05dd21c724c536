/**
 * The two responses of every backend in bench/run.mjs, as bytes:
 *   GET /       "Hello, World!"      (13 bytes)
 *   GET /64k    65,536 bytes, byte i = "a" + (i mod 26), i.e. "abc...xyzabc..."
 * Every backend (Node, PHP, Python, Go, nginx's static file) answers them as text/plain with a
 * Content-Length; the bench checks both bodies through nginx before it measures a row.
 */
export const HELLO_BODY = Buffer.from('Hello, World!');
export const BIG_PATH = '/64k';
export const BIG_BYTES = 64 * 1024;

/** The 64 KiB body: the lowercase alphabet repeated. */
export function makeBigBody() {
  const body = Buffer.allocUnsafe(BIG_BYTES);
  for (let i = 0; i < BIG_BYTES; i++) body[i] = 97 + (i % 26);
  return body;
}

export const BIG_BODY = makeBigBody();
