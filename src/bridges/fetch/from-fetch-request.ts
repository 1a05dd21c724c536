/** fromFetch: the Request a Fetch handler gets, built from the environ (see fromFetch in ../fetch.ts). */
import { variablesToHeaders } from '../../environ/header-variables.js';
import { RequestError } from '../../errors.js';
import type { Environ, InputStream } from '../../types.js';
import { requestUrlOf } from './from-fetch-url.js';

/** Builds the Request fromFetch hands to the handler. Throws RequestError (400, 501) for what can't be one. */
export function buildRequest(environ: Environ, includeScriptName: boolean): Request {
  const url = requestUrlOf(environ, includeScriptName);

  const headers = new Headers();
  for (const [name, value] of variablesToHeaders(environ)) {
    try {
      headers.append(name, value);
    } catch (error) {
      throw new RequestError(`fetch: a request header the Fetch API refuses (${name})`, 400, error);
    }
  }

  const method = environ.REQUEST_METHOD;
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: environ['tsgi.signal'] };
  const length = environ.CONTENT_LENGTH;
  const hasBody = length !== undefined ? length !== '0' : environ['tsgi.input_terminated'];
  if (hasBody && method !== 'GET' && method !== 'HEAD') {
    init.body = inputToStream(environ['tsgi.input']);
    init.duplex = 'half';
  }
  try {
    return new Request(url, init);
  } catch (error) {
    // undici refuses CONNECT, TRACE and TRACK ("forbidden methods"); everything else it refuses is malformed.
    if (/method/i.test((error as Error).message)) {
      throw new RequestError(`fetch: method not supported by the Fetch API (${method.slice(0, 20)})`, 501, error);
    }
    throw new RequestError(`fetch: request can't be a Request (${url.slice(0, 120)})`, 400, error);
  }
}

/**
 * A ReadableStream over `tsgi.input`. highWaterMark 0: it pulls a chunk only when the handler is waiting for
 * one, so the body moves at the handler's pace (and, through the transport, the client's).
 */
function inputToStream(input: InputStream): ReadableStream<Uint8Array> {
  let iterator: AsyncIterator<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= input[Symbol.asyncIterator]();
        const step = await iterator.next();
        if (step.done) controller.close();
        else controller.enqueue(step.value);
      },
      async cancel() {
        await iterator?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
