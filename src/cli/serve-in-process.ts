import { describeListenTarget } from '../servers/listen.js';
import type { App } from '../types.js';
import type { Io } from './io.js';
import { TRANSPORT_NAMES, type ServePlan } from './serve-plan.js';
import type { RunningServer } from './start-server.js';

/** Loads the app and serves it in this process (no master); SIGINT/SIGTERM drain and exit. */
export async function serveInProcess(plan: ServePlan, io: Io): Promise<number> {
  const [{ loadApp }, { startServer }] = await Promise.all([import('./load-app.js'), import('./start-server.js')]);
  let app: App;
  try {
    app = await loadApp(plan.reference, plan.cwd);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const health =
    plan.pingPath !== undefined || plan.statusPath !== undefined || (plan.slowLogSeconds ?? 0) > 0
      ? (await import('./status/single-process.js')).withHealth(
          app,
          plan,
          () => ({ transport: TRANSPORT_NAMES[plan.transport], address: running === undefined ? describeListenTarget(plan.target) : running.address }),
          (line) => void io.stderr.write(`${line}\n`),
        )
      : null;
  let running: RunningServer | undefined;
  try {
    running = await startServer(plan, health?.app ?? app);
  } catch (error) {
    const message = (error as Error).message;
    io.stderr.write(message.startsWith('tsgi serve:') ? `${message}\n` : `tsgi serve: cannot listen on ${describeListenTarget(plan.target)} (${message})\n`);
    return 1;
  }
  health?.watch(running.server);
  const where = plan.transport === 'http' && plan.target.kind === 'tcp' ? `http://${running.address}/` : running.address;
  const startup = `tsgi: serving ${plan.label ?? plan.reference} over ${running.transportName} at ${where} with no workers: single process (pid ${process.pid})\n`;
  const interpreters = Object.entries(plan.cgiBin?.interpreters ?? {}).map(([extension, path]) => `${extension}=${path}`);
  const settings = [
    plan.mount !== undefined ? `mount ${plan.mount || '/'}` : null,
    interpreters.length > 0 ? `interpreters ${interpreters.join(' ')}` : null,
    plan.cgiBin?.readAhead ? 'bodies without a length read ahead' : null,
    plan.maxBodyBytes !== undefined ? `bodies up to ${plan.maxBodyBytes} bytes` : null,
    plan.accessLog !== undefined ? `access log ${plan.accessLog === '-' ? 'to stderr' : plan.accessLog}` : null,
  ].filter((item) => item !== null);
  // One write: whoever waits for the startup line has the settings line with it.
  io.stdout.write(settings.length > 0 ? `${startup}tsgi: ${settings.join('; ')}\n` : startup);
  const onSignal = (signal: NodeJS.Signals): void => {
    process.once(signal, () => process.exit(1));
    io.stderr.write(`tsgi: ${signal} received, finishing in-flight requests (at most ${plan.gracefulTimeoutSeconds} s)\n`);
    void (running as RunningServer).close().then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return new Promise<number>(() => {});
}
