export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_FIELD_BYTES,
  DEFAULT_MAX_FIELDS,
  DEFAULT_MAX_FILES,
  DEFAULT_MAX_MULTIPART_BYTES,
  Request,
  RequestHeaders,
  type RequestOptions,
} from './request.js';
export {
  Response,
  ResponseHeaders,
  type ResponseBody,
  type ResponseHeadersInit,
  type ResponseInit,
} from './response.js';
export { formatStatus, getStatusText, STATUS_TEXT } from './status-text.js';
export { parseCookies, serializeCookie, type CookieOptions } from './cookies.js';
export { parseMultipart, type MultipartLimits } from './multipart.js';
