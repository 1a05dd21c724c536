/**
 * The app of `tsgi serve --cgi-bin DIR`: a module whose default export is cgiBin() configured by the
 * CgiBinPlan (JSON) in the environment variable CGI_BIN_ENV. The serve command sets that variable and names
 * this module as the app, so that every process that loads the app by its module reference (the single
 * process, each worker of `--workers N`, a `--reload` child, `--cgi`) serves the same folder the same way.
 */
import { TsgiError } from '../errors.js';
import type { App } from '../types.js';
import { CGI_BIN_ENV, type CgiBinPlan } from '../cli/serve-plan.js';
import { cgiBin } from './cgi-bin.js';

/** cgiBin() for a serve plan's --cgi-bin settings. */
export function cgiBinOfPlan(plan: CgiBinPlan): App {
  return cgiBin(plan.folder, {
    interpreters: plan.interpreters,
    env: plan.env,
    readAhead: plan.readAhead,
    ...(plan.timeoutMs !== undefined ? { timeoutMs: plan.timeoutMs } : {}),
  });
}

function fromEnvironment(): App {
  const text = process.env[CGI_BIN_ENV];
  if (text === undefined) throw new TsgiError(`tsgi: ${CGI_BIN_ENV} is not set: this module is the app of \`tsgi serve --cgi-bin DIR\``);
  return cgiBinOfPlan(JSON.parse(text) as CgiBinPlan);
}

const app: App = fromEnvironment();
export default app;
