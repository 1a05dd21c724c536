import type { ServePlan } from '../serve-plan.js';
import type { StatusSnapshot, WorkerFigures } from '../status/snapshot.js';

/** Why a worker asks to be replaced. */
export type RecycleReason = 'max-requests' | 'max-rss' | 'timeout';

/** Messages a worker sends its master over the IPC channel. */
export type WorkerMessage =
  | { type: 'ready'; port: number | null }
  | { type: 'beat' }
  | { type: 'recycle'; reason: RecycleReason; detail: string }
  | { type: 'boot-failed'; message: string }
  /** The worker's own figures (--status-path): every STATS_INTERVAL_MS, and in answer to a stats-query (`query`). */
  | { type: 'stats'; figures: WorkerFigures; query?: number }
  /** A client asked this worker for the status page: the master gathers the tree's figures. */
  | { type: 'status-query'; query: number }
  /** The worker's server is ready to listen: send the listening socket (only when WorkerConfig.listen is 'from-master'). */
  | { type: 'listen' };

/** Messages a master sends a worker. */
export type MasterMessage =
  | {
      type: 'stop';
      /** Hand kept-alive FastCGI connections to the master for the workers that stay (handover.ts) instead of closing them. */
      handover: boolean;
    }
  /** Send your figures now (answer with a stats message carrying the same `query`). */
  | { type: 'stats-query'; query: number }
  /** The answer to a status-query: the whole tree, or why it could not be had. */
  | { type: 'status'; query: number; snapshot: StatusSnapshot };

/**
 * The message the master's listening net.Server travels with, in answer to a worker's 'listen' (the public
 * fallback of listen-socket.ts: `subprocess.send(message, server)`).
 */
export interface ListenSocketMessage {
  type: 'listen-socket';
}

/** How often a worker serving a status page sends its figures unasked (so a worker that dies leaves its counts). */
export const STATS_INTERVAL_MS = 1_000;

/** The fd a worker finds the master's listening socket on. */
export const WORKER_LISTEN_FD = 3;

/** The environment variable carrying a worker's WorkerConfig (JSON). */
export const WORKER_ENV = 'TSGI_CLUSTER_WORKER';

/** What a master tells a worker at spawn time. */
export interface WorkerConfig {
  /** The worker's number (1, 2, ...; a replacement gets a new number). */
  id: number;
  /** The plan, with target = the inherited socket on WORKER_LISTEN_FD. */
  plan: ServePlan;
  /** Ask to be recycled after this many requests; 0 = never. */
  requestLimit: number;
  /**
   * Where the worker's connections come from:
   * - 'inherited': it listens on WORKER_LISTEN_FD (the master bound it without accepting on it);
   * - 'from-master': it listens on the master's net.Server, sent over the IPC channel when it asks with a
   *   'listen' message (the public fallback for TCP), and is also passed the connections the master accepted
   *   itself, as 'adopt' messages (handover.ts);
   * - 'relayed': it does not listen at all; the master accepts every connection and passes each one on as an
   *   'adopt' message (the public fallback for a unix socket: Node 20 cannot listen on a unix socket's server
   *   received over IPC, it opens the path a second time and fails with EEXIST).
   */
  listen: 'inherited' | 'from-master' | 'relayed';
}

/** Reads a message that should be a WorkerMessage; null for anything else. */
export function asWorkerMessage(value: unknown): WorkerMessage | null {
  if (typeof value !== 'object' || value === null) return null;
  const type = (value as { type?: unknown }).type;
  if (type === 'ready' || type === 'beat' || type === 'recycle' || type === 'boot-failed' || type === 'stats' || type === 'status-query' || type === 'listen') {
    return value as WorkerMessage;
  }
  return null;
}
