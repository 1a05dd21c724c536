/**
 * --ping-path, --status-path and --slow-log for `tsgi serve --workers 0` (one process, no master): the same
 * endpoints and figures as under a master, the process itself as the only worker.
 */
import type { Server } from 'node:net';
import { createForwardedPolicy } from '../../environ/forwarded-policy.js';
import type { App } from '../../types.js';
import type { ServePlan } from '../serve-plan.js';
import { superviseApp } from '../cluster/supervise.js';
import { withEndpoints } from './endpoints.js';
import { DEFAULT_STATUS_ALLOW } from './snapshot.js';
import { TreeStatus } from './tree-status.js';
import { WorkerStatus } from './worker-status.js';

/** The app with the plan's endpoints and slow log; `watch` starts counting the server's connections. */
export function withHealth(app: App, plan: ServePlan, describe: () => { transport: string; address: string }, log: (line: string) => void): { app: App; watch(server: Server): void } {
  const slowMs = Math.round((plan.slowLogSeconds ?? 0) * 1000);
  if (plan.pingPath === undefined && plan.statusPath === undefined && slowMs === 0) return { app, watch: () => {} };
  const started = Date.now();
  const supervised = superviseApp(app, {
    timeoutMs: 0,
    slowMs,
    trackRunning: plan.statusPath !== undefined,
    onSlow: (request) => {
      const seconds = ((Date.now() - request.started) / 1000).toFixed(1);
      log(`tsgi: slow request (--slow-log ${plan.slowLogSeconds}): ${request.method} ${request.uri} still running after ${seconds} s`);
    },
  });
  // No master to ask: the figures go nowhere but this process's own snapshot.
  const self = new WorkerStatus(supervised, () => {});
  const tree = new TreeStatus(describe);
  const served = withEndpoints(supervised.app, {
    ...(plan.pingPath !== undefined ? { pingPath: plan.pingPath } : {}),
    ...(plan.statusPath !== undefined ? { statusPath: plan.statusPath } : {}),
    statusAllow: createForwardedPolicy(plan.statusAllow ?? DEFAULT_STATUS_ALLOW),
    snapshot: () =>
      Promise.resolve(tree.snapshot([{ slot: 1, pid: process.pid, startedAt: started, state: 'ready', figures: self.figures() }])),
  });
  return { app: served, watch: (server) => self.count(server) };
}
