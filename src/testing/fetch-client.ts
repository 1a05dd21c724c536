import type { ConformanceClient, ConformanceResponse } from './conformance-cases.js';

/**
 * Returns a conformance client that sends each request over the network with fetch to `baseUrl` + the
 * request's path (mount point included in `baseUrl`, e.g. "http://127.0.0.1:8080/cgi-bin/app.cgi"). Redirects
 * are not followed; several Set-Cookie headers are kept as separate entries. For running the shared suite
 * against any deployed server.
 */
export function createFetchClient(baseUrl: string): ConformanceClient {
  return async (request): Promise<ConformanceResponse> => {
    const init: RequestInit = { method: request.method, redirect: 'manual', headers: request.headers ?? [] };
    if (request.body) init.body = Buffer.from(request.body);
    const response = await fetch(`${baseUrl}${request.path}`, init);
    const headers: Array<[string, string]> = [];
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') headers.push([name, value]);
    });
    for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
    return { status: response.status, headers, body: new Uint8Array(await response.arrayBuffer()) };
  };
}
