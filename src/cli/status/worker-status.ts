/**
 * The worker's side of the status page: its own figures, sent to the master every STATS_INTERVAL_MS and on
 * request, and the status page's snapshot asked of the master (which holds the whole tree) over the IPC channel.
 */
import type { Server } from 'node:net';
import { refusalCounts } from '../../servers/limit-log.js';
import type { SupervisedApp } from '../cluster/supervise.js';
import { STATS_INTERVAL_MS, type MasterMessage, type WorkerMessage } from '../cluster/messages.js';
import type { StatusSnapshot, WorkerFigures } from './snapshot.js';

/** How long a status request waits for the master's answer. */
export const STATUS_QUERY_TIMEOUT_MS = 2_000;

/** What a worker keeps for the status page. */
export class WorkerStatus {
  readonly #supervised: SupervisedApp;
  readonly #send: (message: WorkerMessage) => void;
  #accepted = 0;
  #nextQuery = 1;
  readonly #waiting = new Map<number, { resolve: (snapshot: StatusSnapshot) => void; timer: NodeJS.Timeout }>();

  constructor(supervised: SupervisedApp, send: (message: WorkerMessage) => void) {
    this.#supervised = supervised;
    this.#send = send;
  }

  /** Counts the server's connections. */
  count(server: Server): void {
    server.on('connection', () => this.#accepted++);
  }

  /** Counts the server's connections and starts the periodic report to the master. */
  watch(server: Server): void {
    this.count(server);
    setInterval(() => this.#send({ type: 'stats', figures: this.figures() }), STATS_INTERVAL_MS).unref();
  }

  figures(): WorkerFigures {
    return {
      pid: process.pid,
      requests: this.#supervised.served(),
      accepted: this.#accepted,
      slow: this.#supervised.slow(),
      refused: Object.fromEntries(refusalCounts),
      rss: process.memoryUsage.rss(),
      running: this.#supervised.running(),
    };
  }

  /** Handles the master's status messages; false for any other message. */
  onMessage(message: MasterMessage): boolean {
    if (message.type === 'stats-query') {
      this.#send({ type: 'stats', figures: this.figures(), query: message.query });
      return true;
    }
    if (message.type === 'status') {
      const waiter = this.#waiting.get(message.query);
      if (waiter) {
        this.#waiting.delete(message.query);
        clearTimeout(waiter.timer);
        waiter.resolve(message.snapshot);
      }
      return true;
    }
    return false;
  }

  /** The whole tree, from the master; rejects when it does not answer in STATUS_QUERY_TIMEOUT_MS. */
  snapshot(): Promise<StatusSnapshot> {
    const query = this.#nextQuery++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(query);
        reject(new Error(`the master did not answer within ${STATUS_QUERY_TIMEOUT_MS} ms`));
      }, STATUS_QUERY_TIMEOUT_MS);
      timer.unref();
      this.#waiting.set(query, { resolve, timer });
      this.#send({ type: 'status-query', query });
    });
  }
}
