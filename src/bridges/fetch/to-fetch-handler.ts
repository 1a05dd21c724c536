/** toFetch: one Request through a tsgi app, to the Response (see toFetch in ../fetch.ts). */
import { percentDecodeToByteString } from '../../environ/byte-policy.js';
import { createEnviron } from '../../environ/create-environ.js';
import { isUnderMount } from '../../environ/mount.js';
import { AbortError, TsgiError } from '../../errors.js';
import { runApp, type ResponseSink } from '../../response/run-app.js';
import type { App, Environ, ErrorStream } from '../../types.js';
import { abortReason } from './abort-reason.js';
import type { ToFetchOptions } from './options.js';
import { requestVariables, streamToInput } from './to-fetch-environ.js';
import { plainResponse, ResponseOutput } from './to-fetch-response.js';

/** What toFetch resolved once from its options. */
export interface ToFetchSettings {
  /** The mount prefix, normalised (environ/mount.ts): "" for the root. */
  scriptName: string;
  errors: ErrorStream;
  variables: ToFetchOptions['variables'];
}

/**
 * Runs `app` for `request`. Resolves as soon as the app's status and headers are known (the body streams
 * after); a path outside the mount gets a 404 and a request createEnviron refuses its 4xx, without the app.
 * Rejects only when the request was aborted before any response.
 */
export async function handleRequest(app: App, request: Request, settings: ToFetchSettings): Promise<Response> {
  const { scriptName, errors } = settings;
  const url = new URL(request.url);
  const path = percentDecodeToByteString(url.pathname);
  if (!isUnderMount(path, scriptName)) return plainResponse(404);
  const { variables, body } = requestVariables(request, url, path, scriptName);
  if (settings.variables) Object.assign(variables, settings.variables(request));

  // Fires on request.signal and when the Response body is cancelled: the two ways the client can go away.
  const abort = new AbortController();
  const onRequestAbort = (): void => abort.abort(new AbortError('fetch: the request was aborted'));
  if (request.signal.aborted) onRequestAbort();
  else request.signal.addEventListener('abort', onRequestAbort, { once: true });

  let environ: Environ;
  try {
    environ = createEnviron({
      variables,
      ownsVariables: true,
      input: body ? streamToInput(body) : null,
      inputTerminated: body !== null && variables.CONTENT_LENGTH === undefined,
      errors,
      signal: abort.signal,
      multithread: true,
      multiprocess: false,
      runOnce: false,
    });
  } catch (error) {
    request.signal.removeEventListener('abort', onRequestAbort);
    errors.write(`tsgi: fetch: request refused: ${(error as Error).message}\n`);
    return plainResponse(error instanceof TsgiError ? error.status : 400);
  }

  const isHead = request.method === 'HEAD';
  return new Promise<Response>((resolve, reject) => {
    const output = new ResponseOutput(abort, isHead);
    const sink: ResponseSink = {
      sendHead: (code, reason, headers) => resolve(output.start(code, reason, headers)),
      write: (chunk) => output.write(chunk),
      end: () => output.end(),
      abort: (error) => {
        if (output.started) {
          output.fail(error);
        } else if (abort.signal.aborted) {
          reject(abortReason(abort.signal));
        } else {
          // The head could not be a Response (output.start threw): answer a plain 500 instead.
          resolve(plainResponse(500));
        }
      },
    };
    void runApp(app, environ, sink).then((result) => {
      request.signal.removeEventListener('abort', onRequestAbort);
      // runApp always sends a head or aborts; settle anyway so a caller never waits forever.
      if (!output.started) reject(result.error ?? new AbortError('fetch: the app produced no response'));
    });
  });
}
