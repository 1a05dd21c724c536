/** The CGI host: runs CGI executables through pipes (conformance B), and serves a cgi-bin folder. Re-exports only. */
export { cgiBin, DEFAULT_MAX_REDIRECTS, type CgiBinOptions } from './cgi-bin.js';
export {
  runCgi,
  spawnCgi,
  DEFAULT_TIMEOUT_MS,
  KILL_TIMEOUT_MS,
  EXIT_GRACE_MS,
  MAX_STDERR_BYTES,
  MAX_UNSIZED_BODY_BYTES,
  MAX_COLLECTED_BODY_BYTES,
  type CgiBody,
  type CgiHostRequest,
  type CgiHostOptions,
  type CgiExit,
  type CgiResponseHead,
  type CgiStream,
  type CgiResponse,
} from './run-cgi.js';
export {
  buildCgiEnv,
  buildCgiVariables,
  buildChildEnv,
  toChildEnvValue,
  readTsgiVersion,
  DEFAULT_ENV_ALLOW_LIST,
  DEFAULT_PATH,
  type CgiRequest,
  type CgiRequestHeaders,
  type CgiVariablesOptions,
  type ChildEnvOptions,
  type CgiEnvOptions,
} from './cgi-env.js';
export {
  resolveScript,
  lookupScript,
  type ResolvedScript,
  type ResolveScriptOptions,
  type LookupScriptOptions,
  type ScriptLookup,
} from './resolve-script.js';
export {
  parseCgiHead,
  parseNphStatusLine,
  findCgiHeadEnd,
  CgiHeadReader,
  MAX_HEAD_BYTES,
  HOP_BY_HOP_FIELDS,
  type CgiHead,
  type CgiHeadOptions,
  type CgiHeadResult,
} from '../response/cgi-head-parse.js';
