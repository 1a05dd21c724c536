import { dirname, resolve } from 'node:path';
import { dropHttpoxy } from '../servers/httpoxy.js';
import { describeListenTarget } from '../servers/listen.js';
import { buildPlan } from './build-plan.js';
// Loaded when used, so the supervising master loads only what it needs: the config file (--config), the app
// and its server (with no master, or under CGI).
import type { FlagValues } from './config-file.js';
import type { Io } from './io.js';
import { parseAppReference } from './load-app.js';
import { followReloadParent, runWithReload } from './reload.js';
import { CGI_BIN_ENV, cgiBinModulePath, cgiBinPlanOf, type CgiBinPlan, type ServePlan } from './serve-plan.js';
import { SERVE_OPTIONS, SERVE_USAGE, TRANSPORT_FLAGS } from './serve-usage.js';

// As node:fs (serve-plan.ts), an ES import of node:util reads every export: about 0.7 MiB more for the master.
const { parseArgs } = process.getBuiltinModule('node:util');

// The pieces of `tsgi serve`: the flags and help (serve-usage.ts), the plan they make (build-plan.ts), one CGI
// request (serve-cgi.ts), the server in this process (serve-in-process.ts) or under a master (cluster/).
export { SERVE_OPTIONS, SERVE_USAGE } from './serve-usage.js';
export { buildPlan } from './build-plan.js';
export type { Io } from './io.js';

/** A usage error: reported with a hint to --help and exit status 2. */
class UsageError extends Error {}

/**
 * The `tsgi serve` verb. Resolves with the exit status on a usage error (2), a failure to start (1) or after
 * `--help` (0); otherwise it serves until a signal ends the process. Under CGI it answers one request and
 * exits the process itself (once stdout and the access log are flushed).
 */
export async function runServeCommand(args: string[], io: Io = process): Promise<number> {
  let values: FlagValues;
  let reference: string | undefined;
  let configFile: typeof import('./config-file.js') | null = null;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: SERVE_OPTIONS });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (parsed.values.help) {
      io.stdout.write(SERVE_USAGE);
      return 0;
    }
    const [positional, ...rest] = parsed.positionals;
    if (rest.length > 0) throw new UsageError(`expected one MODULE[:EXPORT] (got ${parsed.positionals.join(' ')})`);
    values = parsed.values;
    reference = positional;
    // httpoxy: loading servers/httpoxy.js dropped HTTP_PROXY if GATEWAY_INTERFACE is set; `--cgi` says CGI too,
    // before a config module runs.
    if (values.cgi === true) dropHttpoxy(process.env, true);
    if (typeof values.config === 'string') {
      configFile = await import('./config-file.js');
      const config = await configFile.loadConfigFile(values.config, SERVE_OPTIONS);
      values = configFile.mergeConfig(config.values, values, TRANSPORT_FLAGS);
      reference ??= config.app;
    }
    const transports = TRANSPORT_FLAGS.filter((flag) => values[flag] !== undefined && values[flag] !== false);
    if (transports.length > 1) throw new UsageError(`${transports.map((flag) => `--${flag}`).join(' and ')} exclude each other`);
    if (values['cgi-bin'] !== undefined) {
      if (reference !== undefined) throw new UsageError(`--cgi-bin DIR serves CGI programs, not an app: give one or the other (got ${reference})`);
      // Every process that loads the app (this one, workers, a --reload child) gets cgiBin() from this plan.
      const cgiBinPlan = cgiBinPlanOf(values, process.cwd()) as CgiBinPlan;
      process.env[CGI_BIN_ENV] = JSON.stringify(cgiBinPlan);
      reference = cgiBinModulePath();
    } else {
      const stray = ['cgi-interpreter', 'cgi-env', 'cgi-read-ahead'].filter((flag) => values[flag] !== undefined);
      if (stray.length > 0) throw new UsageError(`${stray.map((flag) => `--${flag}`).join(' and ')} need${stray.length === 1 ? 's' : ''} --cgi-bin DIR`);
    }
    if (reference === undefined) throw new UsageError('expected MODULE[:EXPORT] (or "app" in the config file), or --cgi-bin DIR');
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`tsgi serve: ${error.message}\nRun "tsgi serve --help" for the options.\n`);
      return 2;
    }
    io.stderr.write(`${(error as Error).message}\n`);
    return configFile !== null && error instanceof configFile.ConfigError ? 2 : 1;
  }

  // CGI first: a web server that runs tsgi as a CGI script sets GATEWAY_INTERFACE (RFC 3875 §4.1.4), and
  // stdin is then a pipe (or, under mod_cgid, a socket that is not listening).
  const explicitTransport = TRANSPORT_FLAGS.some((flag) => values[flag] !== undefined && values[flag] !== false);
  if (values.cgi === true || (!explicitTransport && process.env.GATEWAY_INTERFACE)) {
    return (await import('./serve-cgi.js')).serveCgi(reference, values, io);
  }

  let plan: ServePlan;
  try {
    plan = buildPlan(reference, values);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  if (plan.reload) {
    if (plan.target.kind === 'fd') {
      io.stderr.write(`tsgi serve: --reload needs an address of its own (not ${describeListenTarget(plan.target)}): it restarts the server\n`);
      return 1;
    }
    const { modulePath } = parseAppReference(plan.reference);
    return runWithReload({
      childArgs: [process.argv[1] ?? 'tsgi', 'serve', ...args.filter((arg) => arg !== '--reload')],
      watchDir: plan.cgiBin?.folder ?? dirname(resolve(plan.cwd, modulePath)),
      stopTimeoutMs: plan.gracefulTimeoutSeconds * 1000,
      stderr: io.stderr,
    });
  }
  followReloadParent();
  if (plan.workers > 0) return (await import('./cluster/master.js')).runMaster(plan, io);
  return (await import('./serve-in-process.js')).serveInProcess(plan, io);
}

