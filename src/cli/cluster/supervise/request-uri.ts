import type { Environ } from '../../../types.js';

/** The request's URI for log lines and the status page: REQUEST_URI, else SCRIPT_NAME + PATH_INFO (+ "?" QUERY_STRING). */
export function requestUri(environ: Environ): string {
  if (typeof environ.REQUEST_URI === 'string' && environ.REQUEST_URI !== '') return environ.REQUEST_URI;
  const query = environ.QUERY_STRING ? `?${environ.QUERY_STRING}` : '';
  return `${environ.SCRIPT_NAME ?? ''}${environ.PATH_INFO ?? ''}${query}`;
}
