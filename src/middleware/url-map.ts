import { encodeUtf8Latin1 } from '../environ/byte-policy.js';
import { hostWithoutPort } from '../environ/host.js';
import { isUnderMount, normalizeMount } from '../environ/mount.js';
import { Response } from '../helpers/response.js';
import type { App, Body, Environ, StartResponse } from '../types.js';

/**
 * Mount points: a path prefix ("/api", "/" for the fallback) or a host plus prefix ("http://example.com/api";
 * the scheme is ignored, "https://" works the same) mapped to an app.
 */
export type UrlMapRoutes = Readonly<Record<string, App>> | Iterable<readonly [string, App]>;

/** Options for `urlMap`. */
export interface UrlMapOptions {
  /** Answers requests no mount point matches; default: 404 text/plain "Not Found". */
  notFound?: App;
}

interface Mount {
  host: string | null;
  /** The prefix as a byte string (the environ's policy), without a trailing "/"; "" for the root. */
  prefix: string;
  app: App;
}

const notFoundApp: App = Response.text('Not Found\n', { status: 404 });

/**
 * Dispatches on the path (and optionally the host): the longest matching prefix wins, matching on segment
 * boundaries only: "/api" matches "/api" and "/api/x", never "/apix". Mounts with a host are tried before
 * mounts without one; a host matches the Host header (with or without its port) or SERVER_NAME (alone or with
 * SERVER_PORT), case-insensitively.
 *
 * The app mounted at the match sees a shallow copy of the environ (the caller's is never changed) with the
 * matched prefix moved from PATH_INFO to the end of SCRIPT_NAME; PATH_INFO keeps the rest ("" or starting
 * with "/"). Prefixes are written as text and compared as UTF-8 bytes under the environ's byte policy, so
 * "/café" matches the request path "/caf%C3%A9". Trailing slashes of a prefix are ignored ("/api/" is "/api").
 *
 * Nothing matching -> `options.notFound`, by default a 404 text/plain page. Throws TypeError at build time for a
 * prefix that does not start with "/" (after its optional host part) or a value that is not a function.
 */
export function urlMap(routes: UrlMapRoutes, options: UrlMapOptions = {}): App {
  const entries = Symbol.iterator in routes ? [...(routes as Iterable<readonly [string, App]>)] : Object.entries(routes);
  const mounts = entries.map(([key, app]) => parseMount(key, app));
  // Host-specific mounts first, then longer prefixes first: the first match is the best one.
  mounts.sort((a, b) => Number(b.host !== null) - Number(a.host !== null) || b.prefix.length - a.prefix.length);
  const notFound = options.notFound ?? notFoundApp;

  return function dispatchUrl(environ: Environ, startResponse: StartResponse): Body | Promise<Body> {
    const pathInfo = environ.PATH_INFO ?? '';
    const hosts = candidateHosts(environ);
    for (const mount of mounts) {
      if (mount.host !== null && !hosts.has(mount.host)) continue;
      if (!isUnderMount(pathInfo, mount.prefix)) continue;
      const mounted: Environ = {
        ...environ,
        SCRIPT_NAME: (environ.SCRIPT_NAME ?? '') + mount.prefix,
        PATH_INFO: pathInfo.slice(mount.prefix.length),
      };
      return mount.app(mounted, startResponse);
    }
    return notFound(environ, startResponse);
  };
}

function parseMount(key: string, app: App): Mount {
  if (typeof app !== 'function') throw new TypeError(`url-map: mount must be an app (${key}: ${typeof app})`);
  let host: string | null = null;
  let path = key;
  const match = /^https?:\/\/([^/]+)(.*)$/i.exec(key);
  if (match) {
    host = (match[1] as string).toLowerCase();
    path = match[2] === '' ? '/' : (match[2] as string);
  }
  if (!path.startsWith('/')) throw new TypeError(`url-map: prefix must start with "/" (${JSON.stringify(key)})`);
  const prefix = encodeUtf8Latin1(normalizeMount(path, 'url-map: prefix'));
  return { host, prefix, app };
}

function candidateHosts(environ: Environ): Set<string> {
  const hosts = new Set<string>();
  const header = typeof environ.HTTP_HOST === 'string' ? environ.HTTP_HOST.toLowerCase() : '';
  if (header !== '') {
    hosts.add(header);
    hosts.add(hostWithoutPort(header) ?? header);
  }
  const name = typeof environ.SERVER_NAME === 'string' ? environ.SERVER_NAME.toLowerCase() : '';
  if (name !== '') {
    hosts.add(name);
    if (typeof environ.SERVER_PORT === 'string') hosts.add(`${name}:${environ.SERVER_PORT}`);
  }
  return hosts;
}
