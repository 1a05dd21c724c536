export { conformanceApp } from './conformance-app.js';
export {
  conformanceCases,
  headerOf,
  headersOf,
  patternBytes,
  type ConformanceCase,
  type ConformanceClient,
  type ConformanceContext,
  type ConformanceRequest,
  type ConformanceResponse,
} from './conformance-cases.js';
