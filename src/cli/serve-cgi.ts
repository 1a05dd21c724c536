import { Writable } from 'node:stream';
import { STATUS_TEXT } from '../helpers/status-text.js';
import { dropHttpoxy } from '../servers/httpoxy.js';
import type { App } from '../types.js';
import { parseSize } from './build-plan.js';
import type { FlagValues } from './config-file.js';
import type { Io } from './io.js';

/**
 * Answers the one CGI request in this process's environment (runWithCgi), with --max-body, --access-log and
 * --error-log (instead of stderr) applied; the process-management and socket flags mean nothing here and are ignored. A module that fails to
 * load still gets the web server a 500 response (not "premature end of script headers"), the reason on stderr.
 */
export async function serveCgi(reference: string, values: FlagValues, io: Io): Promise<never> {
  const { runWithCgi } = await import('../servers/cgi.js');
  const { loadApp } = await import('./load-app.js');
  const { accessLog } = await import('../middleware/access-log.js');
  const { openAccessLogFile } = await import('./access-log-file.js');
  // httpoxy: HTTP_PROXY is the client's `Proxy:` header here; gone before the app module's code runs.
  dropHttpoxy(process.env, true);
  let app: App;
  let log: { write(line: string): void; close(): Promise<void> } | null = null;
  let stderr: Writable | undefined;
  try {
    const maxBody = typeof values['max-body'] === 'string' ? parseSize(values['max-body'], '--max-body') : undefined;
    const target = values['access-log'];
    if (typeof target === 'string') log = openAccessLogFile(target, io.stderr);
    if (typeof values['error-log'] === 'string') {
      const errorLog = (await import('./error-log-file.js')).openErrorLog(values['error-log']);
      stderr = new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          errorLog.write(chunk.toString());
          done();
        },
      });
    }
    // One request per process: TypeScript is compiled here, sooner than in a helper process.
    const loaded = await loadApp(reference, process.cwd(), { inProcess: true });
    app = maxBody === undefined ? loaded : limitCgiBody(loaded, maxBody);
  } catch (error) {
    app = answerWith(500, (error as Error).message);
  }
  if (log) app = accessLog(app, log);
  const status = await runWithCgi(app, { exit: false, ...(stderr ? { stderr } : {}) });
  await log?.close();
  process.exit(status);
}

/** Refuses a CONTENT_LENGTH over `maxBodyBytes` with 413 before the app runs. */
function limitCgiBody(app: App, maxBodyBytes: number): App {
  return (environ, startResponse) => {
    const length = environ.CONTENT_LENGTH;
    if (typeof length === 'string' && /^[0-9]+$/.test(length) && Number(length) > maxBodyBytes) {
      return answerWith(413, `tsgi: cgi: request body exceeds --max-body (${length} > ${maxBodyBytes})`)(environ, startResponse);
    }
    return app(environ, startResponse);
  };
}

/** An app that logs `message` (one line, no stack) to tsgi.errors and answers a plain `code` page. */
function answerWith(code: number, message: string): App {
  return (environ, startResponse) => {
    environ['tsgi.errors'].write(`${message}\n`);
    const reason = STATUS_TEXT[code] ?? 'Error';
    startResponse(`${code} ${reason}`, [['Content-Type', 'text/plain; charset=utf-8']]);
    return environ.REQUEST_METHOD === 'HEAD' ? [] : [`${code} ${reason}\n`];
  };
}


