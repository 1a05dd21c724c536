export {
  DEFAULT_MAX_SCGI_HEADER_BYTES,
  ScgiHeaderReader,
  decodeScgiHeaders,
  encodeScgiHeader,
  encodeScgiRequest,
  type ScgiHeader,
} from './netstring.js';
