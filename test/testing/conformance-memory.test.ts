import { describe, it } from 'vitest';
import { conformanceApp, conformanceCases, type ConformanceRequest } from '../../src/testing/conformance.js';
import { testClient } from '../../src/testing/test-client.js';

const client = testClient(conformanceApp);

async function send(request: ConformanceRequest) {
  const response = await client.request({
    method: request.method,
    url: request.path,
    ...(request.headers ? { headers: request.headers } : {}),
    ...(request.body ? { body: request.body } : {}),
  });
  return { status: response.status, headers: response.headers, body: response.body };
}

describe('conformance suite, in memory (testClient)', () => {
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      testCase.check(await send(testCase.request), { scriptName: '', transport: 'memory' });
    });
  }
});
