/** Types for pattern.mjs (see there). */
export declare const PATTERN_CHUNK_BYTES: number;
export declare function generatePattern(totalBytes: number): Generator<Buffer, void, undefined>;
