/**
 * The master's side of the status page: per worker slot, the counters of the workers that served in it before
 * (so metrics never go backwards when a worker is replaced) and its restarts; and the gathering of every
 * worker's figures when one of them is asked for the page.
 */
import type { StatusSnapshot, WorkerFigures, WorkerStatus } from './snapshot.js';

/** How long the master waits for the workers' figures before it answers with what it has. */
export const GATHER_TIMEOUT_MS = 500;

/** A worker as the tree status sees it (the master's WorkerState has these fields). */
export interface TreeWorker {
  slot: number;
  pid: number;
  startedAt: number;
  state: 'booting' | 'ready' | 'stopping';
  figures?: WorkerFigures;
}

interface Slot {
  requests: number;
  accepted: number;
  slow: number;
  refused: Record<string, number>;
  restarts: number;
  lastRestart: string | null;
}

interface Gathering {
  pending: Set<TreeWorker>;
  timer: NodeJS.Timeout;
  answer: () => void;
}

/** What the master keeps for the status page. */
export class TreeStatus {
  readonly started = Date.now();
  readonly #slots = new Map<number, Slot>();
  readonly #restartReasons: Record<string, number> = {};
  readonly #gatherings = new Map<number, Gathering>();
  #nextQuery = 1;
  readonly #describe: () => { transport: string; address: string };

  constructor(describe: () => { transport: string; address: string }) {
    this.#describe = describe;
  }

  #slot(id: number): Slot {
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      slot = { requests: 0, accepted: 0, slow: 0, refused: {}, restarts: 0, lastRestart: null };
      this.#slots.set(id, slot);
    }
    return slot;
  }

  /** A worker is gone: its last counts stay with its slot; `restartReason` (null: not a restart) is counted. */
  retire(worker: TreeWorker, restartReason: string | null): void {
    const slot = this.#slot(worker.slot);
    const figures = worker.figures;
    if (figures !== undefined) {
      slot.requests += figures.requests;
      slot.accepted += figures.accepted;
      slot.slow += figures.slow;
      for (const [limit, count] of Object.entries(figures.refused)) slot.refused[limit] = (slot.refused[limit] ?? 0) + count;
      worker.figures = undefined;
    }
    if (restartReason !== null) {
      slot.restarts++;
      slot.lastRestart = restartReason;
      const key = restartReason.split(/[:( ]/, 1)[0] || 'other';
      this.#restartReasons[key] = (this.#restartReasons[key] ?? 0) + 1;
    }
  }

  /**
   * Asks `workers` for their figures (`ask(worker, query)` sends the stats-query) and calls `answer` with the
   * snapshot once all have answered or after GATHER_TIMEOUT_MS.
   */
  gather(workers: TreeWorker[], ask: (worker: TreeWorker, query: number) => boolean, answer: (snapshot: StatusSnapshot) => void): void {
    const query = this.#nextQuery++;
    const pending = new Set<TreeWorker>();
    const finish = (): void => {
      const gathering = this.#gatherings.get(query);
      if (gathering === undefined) return;
      this.#gatherings.delete(query);
      clearTimeout(gathering.timer);
      answer(this.snapshot(workers));
    };
    for (const worker of workers) if (ask(worker, query)) pending.add(worker);
    const timer = setTimeout(finish, GATHER_TIMEOUT_MS);
    timer.unref();
    this.#gatherings.set(query, { pending, timer, answer: finish });
    if (pending.size === 0) finish();
  }

  /** A worker sent its figures (unasked, or for `query`). */
  received(worker: TreeWorker, figures: WorkerFigures, query: number | undefined): void {
    worker.figures = figures;
    if (query === undefined) return;
    const gathering = this.#gatherings.get(query);
    if (gathering === undefined) return;
    gathering.pending.delete(worker);
    if (gathering.pending.size === 0) gathering.answer();
  }

  /** The tree now: one entry per worker shown, counters including their slot's earlier workers. */
  snapshot(workers: TreeWorker[]): StatusSnapshot {
    const { transport, address } = this.#describe();
    const shown: WorkerStatus[] = [...workers]
      .sort((a, b) => a.slot - b.slot)
      .map((worker) => {
        const slot = this.#slot(worker.slot);
        const live = worker.figures;
        const refused: Record<string, number> = { ...slot.refused };
        for (const [limit, count] of Object.entries(live?.refused ?? {})) refused[limit] = (refused[limit] ?? 0) + count;
        return {
          id: worker.slot,
          pid: worker.pid,
          started: worker.startedAt,
          state: worker.state,
          requests: slot.requests + (live?.requests ?? 0),
          accepted: slot.accepted + (live?.accepted ?? 0),
          slow: slot.slow + (live?.slow ?? 0),
          refused,
          rss: live?.rss ?? 0,
          running: live?.running ?? [],
          restarts: slot.restarts,
          lastRestart: slot.lastRestart,
        };
      });
    return { masterPid: process.pid, started: this.started, now: Date.now(), transport, address, workers: shown, restarts: { ...this.#restartReasons } };
  }
}
