/**
 * The deterministic byte stream of the streaming benchmark, shared by bench/run.mjs (which uploads it and
 * computes the hash a download must have) and bench/apps/stream.ts (which serves it as a download).
 *
 * A 64 KiB block of xorshift32 output, repeated, with each chunk's index written over its first 4 bytes so
 * that a dropped, repeated or reordered chunk changes the hash. Cheap to produce (one copy per chunk), so the
 * generator never becomes the bottleneck of a transfer it measures.
 */
export const PATTERN_CHUNK_BYTES = 64 * 1024;
const SEED = 0x9e3779b9;

function fillBlock() {
  const words = new Uint32Array(PATTERN_CHUNK_BYTES / 4);
  let x = SEED;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer);
}

const BLOCK = fillBlock();

/** Yields `totalBytes` deterministic bytes as fresh Buffers of PATTERN_CHUNK_BYTES (the last may be shorter). */
export function* generatePattern(totalBytes) {
  let index = 0;
  for (let offset = 0; offset < totalBytes; offset += PATTERN_CHUNK_BYTES, index++) {
    const size = Math.min(PATTERN_CHUNK_BYTES, totalBytes - offset);
    const chunk = Buffer.allocUnsafe(size);
    BLOCK.copy(chunk, 0, 0, size);
    if (size >= 4) chunk.writeUInt32LE(index, 0);
    yield chunk;
  }
}
