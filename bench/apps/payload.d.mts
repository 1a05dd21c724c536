/** Types for payload.mjs (see there). */
export declare const HELLO_BODY: Buffer;
export declare const BIG_PATH: string;
export declare const BIG_BYTES: number;
export declare function makeBigBody(): Buffer;
export declare const BIG_BODY: Buffer;
