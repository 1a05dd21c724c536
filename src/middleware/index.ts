export { compose } from './compose.js';
export { errorHandler, type ErrorHandlerOptions } from './error-handler.js';
export { urlMap, type UrlMapOptions, type UrlMapRoutes } from './url-map.js';
export {
  checkEnviron,
  checkResponseHeaders,
  checkStatusLine,
  formatWarning,
  validator,
  type LintWarning,
  type ValidatorOptions,
  type WarningHandler,
} from './validator.js';
export { accessLog, formatAccessLogLine, formatLogDate, escapeLogText, type AccessLogOptions, type AccessLogEntry } from './access-log.js';
