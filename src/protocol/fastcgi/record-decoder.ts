import { ProtocolError } from '../../errors.js';
import { FCGI_HEADER_LENGTH, FCGI_VERSION_1 } from './constants.js';

/**
 * One decoded record. `content` may be a view into the bytes pushed: it stays valid as long as they are not
 * overwritten (a socket read never is: Node does not reuse its buffers), and keeping it keeps their whole
 * buffer alive; copy it when either matters.
 */
export interface FastCgiRecord {
  type: number;
  requestId: number;
  content: Uint8Array;
}

/** A record handed over as its three fields: the server's hot path, with no object per record. */
export type RecordHandler = (type: number, requestId: number, content: Uint8Array) => void;

const EMPTY = new Uint8Array(0);

const enum State {
  Header,
  Content,
  Padding,
}

/**
 * A streaming decoder of FastCGI records (§3.3): push socket reads of any size, get whole records. Headers,
 * contents and padding may be split anywhere across reads. A record whose content arrives whole in one read is
 * handed over as a view, without a copy; a split content is gathered into a buffer of exactly its declared
 * length, at most 65535 bytes, so no input can make it allocate more. A version other than 1 throws a
 * ProtocolError (the connection must close: the stream can't be resynchronised).
 */
export class RecordDecoder {
  #emit: RecordHandler;
  readonly #header = new Uint8Array(FCGI_HEADER_LENGTH);
  #state = State.Header;
  #headerFilled = 0;
  #type = 0;
  #requestId = 0;
  #contentLength = 0;
  #paddingLength = 0;
  #content: Uint8Array | null = null;
  #contentFilled = 0;
  #paddingLeft = 0;

  constructor(onRecord: (record: FastCgiRecord) => void) {
    this.#emit = (type, requestId, content) => onRecord({ type, requestId, content });
  }

  /** A decoder that calls `onRecord` with each record's fields instead of a record object (no allocation per record). */
  static withFields(onRecord: RecordHandler): RecordDecoder {
    const decoder = new RecordDecoder(ignore);
    decoder.#emit = onRecord;
    return decoder;
  }

  /** Decodes what `chunk` completes; calls onRecord for each record, in order. */
  push(chunk: Uint8Array): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.#state === State.Header) {
        if (this.#headerFilled === 0 && end - offset >= FCGI_HEADER_LENGTH) {
          this.#readHeader(chunk, offset);
          offset += FCGI_HEADER_LENGTH;
          // The common case: the whole content is in this read too, so hand over a view.
          if (end - offset >= this.#contentLength) {
            const length = this.#contentLength;
            const content = length === 0 ? EMPTY : chunk.subarray(offset, offset + length);
            offset += length;
            this.#paddingLeft = this.#paddingLength;
            this.#state = this.#paddingLeft > 0 ? State.Padding : State.Header;
            this.#emit(this.#type, this.#requestId, content);
          } else {
            this.#startContent();
          }
          continue;
        }
        const take = Math.min(FCGI_HEADER_LENGTH - this.#headerFilled, end - offset);
        this.#header.set(chunk.subarray(offset, offset + take), this.#headerFilled);
        this.#headerFilled += take;
        offset += take;
        if (this.#headerFilled === FCGI_HEADER_LENGTH) {
          this.#headerFilled = 0;
          this.#readHeader(this.#header, 0);
          this.#startContent();
        }
      } else if (this.#state === State.Content) {
        const content = this.#content as Uint8Array;
        const take = Math.min(this.#contentLength - this.#contentFilled, end - offset);
        content.set(chunk.subarray(offset, offset + take), this.#contentFilled);
        this.#contentFilled += take;
        offset += take;
        if (this.#contentFilled === this.#contentLength) this.#finishContent();
      } else {
        const take = Math.min(this.#paddingLeft, end - offset);
        this.#paddingLeft -= take;
        offset += take;
        if (this.#paddingLeft === 0) this.#state = State.Header;
      }
    }
  }

  /** True when no record is partly received (a clean place for the peer to close). */
  get idle(): boolean {
    return this.#state === State.Header && this.#headerFilled === 0;
  }

  #readHeader(bytes: Uint8Array, at: number): void {
    const version = bytes[at] as number;
    if (version !== FCGI_VERSION_1) throw new ProtocolError(`fastcgi: unsupported record version (${version})`);
    this.#type = bytes[at + 1] as number;
    this.#requestId = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    this.#contentLength = ((bytes[at + 4] as number) << 8) | (bytes[at + 5] as number);
    this.#paddingLength = bytes[at + 6] as number;
  }

  #startContent(): void {
    if (this.#contentLength === 0) {
      this.#finishContent();
      return;
    }
    this.#content = new Uint8Array(this.#contentLength);
    this.#contentFilled = 0;
    this.#state = State.Content;
  }

  #finishContent(): void {
    const content = this.#content ?? EMPTY;
    this.#content = null;
    this.#paddingLeft = this.#paddingLength;
    this.#state = this.#paddingLeft > 0 ? State.Padding : State.Header;
    this.#emit(this.#type, this.#requestId, content);
  }
}

function ignore(): void {}
