import type { LimitLog } from '../limit-log.js';
import type { ResolvedOneRequestOptions } from './options.js';
import type { OneRequestHead } from './protocol.js';

/**
 * Whether a complete request head may run the app: 0 when it may, else the status to answer without running
 * it (logged here). 502 when CONTENT_LENGTH is shorter than the client's Content-Length header: nginx 1.22
 * with scgi_request_buffering off sends as CONTENT_LENGTH only the body bytes it had read so far, and running
 * the app would hand it a silently truncated body (a longer CONTENT_LENGTH is left alone: an input filter
 * such as mod_deflate's may have inflated the body). 413 when CONTENT_LENGTH is over maxBodyBytes.
 */
export function refusalOfHead(head: OneRequestHead, options: ResolvedOneRequestOptions, name: string, limitLog: LimitLog): number {
  const variables = head.variables;
  const declared = variables.HTTP_CONTENT_LENGTH;
  if (declared !== undefined && /^[0-9]+$/.test(declared) && Number(declared) > head.contentLength && variables.HTTP_TRANSFER_ENCODING === undefined) {
    options.errors.write(
      `tsgi: ${name}: CONTENT_LENGTH is shorter than the Content-Length request header (${head.contentLength} < ${declared}); ` +
        'behind nginx over SCGI, keep scgi_request_buffering on\n',
    );
    return 502;
  }
  if (head.contentLength > options.maxBodyBytes) {
    limitLog.hit(
      'maxBodyBytes',
      `a request body of ${head.contentLength} bytes was answered 413 (over ${options.maxBodyBytes})`,
      '--max-body SIZE (option maxBodyBytes)',
    );
    return 413;
  }
  return 0;
}
