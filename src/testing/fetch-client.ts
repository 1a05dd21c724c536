import { request as httpRequest } from 'node:http';
import type { ConformanceClient, ConformanceRequest, ConformanceResponse } from './conformance-cases.js';

/**
 * Returns a conformance client that sends each request over the network with fetch to `baseUrl` + the
 * request's path (mount point included in `baseUrl`, e.g. "http://127.0.0.1:8080/cgi-bin/app.cgi"). Redirects
 * are not followed; several Set-Cookie headers are kept as separate entries. For running the shared suite
 * against any deployed server.
 */
export function createFetchClient(baseUrl: string): ConformanceClient {
  return async (request): Promise<ConformanceResponse> => {
    // fetch joins a repeated header into one line; the web server must see each line (case "repeated-header").
    if (hasRepeatedHeader(request.headers ?? [])) return sendWithRawHeaders(`${baseUrl}${request.path}`, request);
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

function hasRepeatedHeader(headers: ReadonlyArray<readonly [string, string]>): boolean {
  const names = headers.map(([name]) => name.toLowerCase());
  return new Set(names).size < names.length;
}

/** Sends `request` with node:http given the header lines as a raw list, so each goes out as its own line. */
function sendWithRawHeaders(url: string, request: ConformanceRequest): Promise<ConformanceResponse> {
  // Given a raw list, node:http adds no header of its own (not even Host).
  const raw: string[] = ['Host', new URL(url).host, 'Connection', 'close'];
  for (const [name, value] of request.headers ?? []) raw.push(name, value);
  const body = request.body ? Buffer.from(request.body) : null;
  if (body) raw.push('Content-Length', String(body.length));
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method: request.method, headers: raw, agent: false }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('error', reject);
      incoming.on('end', () => {
        const headers: Array<[string, string]> = [];
        for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.push([(incoming.rawHeaders[i] as string).toLowerCase(), incoming.rawHeaders[i + 1] as string]);
        resolve({ status: incoming.statusCode ?? 0, headers, body: new Uint8Array(Buffer.concat(chunks)) });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(body ?? undefined);
  });
}
