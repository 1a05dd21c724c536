export * from './constants.js';
export { RecordDecoder, type FastCgiRecord, type RecordHandler } from './record-decoder.js';
export { NameValueCollector, decodeNameValuePairs, encodeNameValuePairs, type NameValuePair } from './name-value.js';
export {
  encodeBeginRequest,
  encodeEndRequest,
  encodeGetValuesResult,
  encodeRecord,
  encodeStreamRecords,
  encodeUnknownType,
  writeEndRequest,
  writeRecordHeader,
} from './record-encoder.js';
