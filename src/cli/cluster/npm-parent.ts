/**
 * Under npm (npx, npm exec, npm start) a `tsgi serve` master's parent is npm's `sh -c`, which dies on a SIGTERM
 * that npm forwards to it without passing it on: the master would be left running. So under npm only (an
 * ordinary background start, nohup or setsid, must survive its shell), a master whose parent is gone stops.
 */

/** Calls `onGone(parentPid)` once if this process runs under npm and its parent goes away (checked every second). */
export function watchNpmParent(onGone: (parentPid: number) => void): void {
  if (!process.env.npm_command && !process.env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, 1_000);
  timer.unref();
}
