export { testClient, type TestClient, type TestClientOptions, type TestRequest, type TestResponse } from './test-client.js';
export * from './conformance.js';
export * from '../host/index.js';
export { createFetchClient } from './fetch-client.js';
