export * from './constants.js';
export { RecordDecoder, type FastCgiRecord, type RecordHandler } from './record-decoder.js';
export { NameValueCollector, decodeNameValuePairs, encodeNameValuePairs, type NameValuePair } from './name-value.js';
export {
  FIXED_BODY_LENGTH,
  answerGetValues,
  decodeBeginRequest,
  decodeEndRequest,
  decodeUnknownType,
  encodeGetValuesBody,
  protocolStatusName,
  writeBeginRequestBody,
  writeEndRequestBody,
  writeUnknownTypeBody,
  type BeginRequestBody,
  type EndRequestBody,
} from './record-bodies.js';
export {
  encodeBeginRequest,
  encodeEndRequest,
  encodeGetValues,
  encodeGetValuesResult,
  encodeRecord,
  encodeStreamRecords,
  encodeUnknownType,
  writeEndRequest,
  writeRecordHeader,
  writeUnknownType,
} from './record-encoder.js';
