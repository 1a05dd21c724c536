/**
 * The soak's request mix, a pure function of the request number so every run sends the same sequence:
 * out of every 20 requests, 15 GETs of a small page, 4 POSTs of bodies from 0 bytes to 1 MiB echoed back,
 * and 1 download of 1 MiB. Each comes with the sha256 its answer must have.
 */
import { randomBytes } from 'node:crypto';
import { PATTERN_SEEDS, patternBytes, smallPage } from './fixtures/content.js';
import { MIB, MOUNT, sha256, type Exchange } from './harness.js';

/** The POST body sizes, cycled through. */
export const POST_SIZES = [0, 1, 100, 1000, 4096, 16_384, 65_536, 131_072, 300_000, MIB] as const;
/** The size of each download. */
export const DOWNLOAD_BYTES = MIB;

/** Bodies are slices of one random buffer (made once per process), at offsets that vary per request. */
const POOL = randomBytes(2 * MIB);
const downloadHashes = new Map<number, string>();

function downloadHash(seed: number): string {
  let hash = downloadHashes.get(seed);
  if (hash === undefined) {
    hash = sha256(patternBytes(seed, DOWNLOAD_BYTES));
    downloadHashes.set(seed, hash);
  }
  return hash;
}

/** Request number `i` of the soak. */
export function soakExchange(i: number): Exchange {
  const slot = i % 20;
  const round = Math.floor(i / 20);
  if (slot === 0) {
    const seed = round % PATTERN_SEEDS;
    return { kind: 'download', method: 'GET', path: `${MOUNT}/download?bytes=${DOWNLOAD_BYTES}&seed=${seed}`, expectSha256: downloadHash(seed) };
  }
  if (slot <= 4) {
    const size = POST_SIZES[(round * 4 + slot) % POST_SIZES.length] as number;
    const offset = (i * 7919) % (POOL.length - size + 1);
    const body = POOL.subarray(offset, offset + size);
    return { kind: 'post', method: 'POST', path: `${MOUNT}/echo`, body, expectSha256: sha256(body) };
  }
  const n = String(i);
  return { kind: 'get', method: 'GET', path: `${MOUNT}/small?n=${n}`, expectSha256: sha256(smallPage(n)) };
}
