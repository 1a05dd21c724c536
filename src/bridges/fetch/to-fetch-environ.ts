/** toFetch: the CGI variables and the input of the environ a tsgi app gets for a Request (see toFetch in ../fetch.ts). */
import { headersToVariables } from '../../environ/header-variables.js';
import { readVersion } from '../../version.js';

/** What requestVariables found: the variables and the body the app's `tsgi.input` reads (null: none). */
export interface RequestParts {
  variables: Record<string, string | undefined>;
  body: ReadableStream<Uint8Array> | null;
}

/**
 * The CGI variables of `request`: SCRIPT_NAME the mount prefix, PATH_INFO the rest of `path` (the URL path
 * percent-decoded into a byte string, known to lie under the prefix), QUERY_STRING and REQUEST_URI raw,
 * SERVER_NAME/SERVER_PORT from the URL, HTTPS for an https: URL, one HTTP_* per header (Authorization
 * included), CONTENT_TYPE and CONTENT_LENGTH; GET and HEAD have no body.
 */
export function requestVariables(request: Request, url: URL, path: string, scriptName: string): RequestParts {
  const method = request.method;
  const variables: Record<string, string | undefined> = headersToVariables(request.headers, { passAuthorization: true });
  const https = url.protocol === 'https:';
  variables.HTTP_HOST ??= url.host;
  variables.REQUEST_METHOD = method;
  variables.SCRIPT_NAME = scriptName;
  variables.PATH_INFO = path.slice(scriptName.length);
  variables.QUERY_STRING = url.search.slice(1);
  variables.REQUEST_URI = `${url.pathname}${url.search}`;
  variables.SERVER_NAME = url.hostname;
  variables.SERVER_PORT = url.port || (https ? '443' : '80');
  variables.SERVER_PROTOCOL = 'HTTP/1.1';
  variables.SERVER_SOFTWARE = `tsgi/${readVersion()}`;
  variables.GATEWAY_INTERFACE = 'CGI/1.1';
  if (https) variables.HTTPS = 'on';
  const body = method === 'GET' || method === 'HEAD' ? null : request.body;
  // No body, no CONTENT_LENGTH (RFC 3875 §4.1.2), whatever the headers claim.
  if (body === null) delete variables.CONTENT_LENGTH;
  return { variables, body };
}

/** The request body as the async iterable createEnviron reads: one reader.read() per pull, nothing ahead. */
export function streamToInput(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const reader = stream.getReader();
      let done = false;
      try {
        for (;;) {
          const step = await reader.read();
          if (step.done) {
            done = true;
            return;
          }
          yield step.value;
        }
      } finally {
        // Reached when the app stopped reading early: let the request body go.
        if (!done) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    },
  };
}
