import type { Socket } from 'node:net';
import type { ByteBudget, NameValueCache } from '../../protocol/fastcgi/name-value.js';
import type { App } from '../../types.js';
import type { LimitLog, PeerLog } from '../limit-log.js';
import type { ResolvedFastCgiOptions } from './options.js';

/**
 * What a connection shares with its server: the apps, the options, the count of requests in progress.
 * `Connection` is the connection's own type (FastCgiConnection, as connection.ts names it), a parameter so
 * that this file, which connection.ts and admission.ts import, does not import connection.ts back.
 */
export interface ConnectionServer<Connection = unknown> {
  readonly options: ResolvedFastCgiOptions;
  readonly app: App;
  /** Requests in progress in the whole server. */
  activeRequests: number;
  /** True once the server is closing: connections close as soon as they have no request in progress. */
  readonly draining: boolean;
  /** Called when a connection is gone, so the server stops tracking it. */
  forget(connection: Connection): void;
  /**
   * Where a draining server hands its kept-alive connections, or null (they close instead). Set by a
   * `tsgi serve` worker: it sends them to its master, which passes them to a worker that stays.
   */
  readonly handover: ((socket: Socket, sent: () => void) => void) | null;
  /** Bytes buffered for peers in the whole server (bounded by maxBufferedBytes). */
  readonly budget: ByteBudget;
  /** A coarse clock (Date.now() at the last timeout sweep or accept): cheap to read on every record. */
  readonly now: number;
  /** The server's rate-limited log of refusals at limits. */
  readonly limitLog: LimitLog;
  /** What peers make the server log (protocol errors, refused addresses): one line per kind per 10 s. */
  readonly peerLog: PeerLog;
  /**
   * The strings of the last PARAMS decoded, reused when the same bytes come again: one per server rather than
   * per connection, so a new connection (nginx opens some all the time) starts warm. Decoding is synchronous.
   */
  readonly nameCache: NameValueCache;
  /** What GET_VALUES is answered with (see getValuesOf): made once, from the options. */
  readonly getValues: Readonly<Record<string, string>>;
  /**
   * Called when the server holds maxBufferedBytes: cuts the connection piling up the most unfinished PARAMS,
   * if one holds enough to be worth it. True when one was cut (its bytes are let go at once).
   */
  shed(): boolean;
}
