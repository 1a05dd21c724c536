import { describe, expect, it } from 'vitest';
import { validator } from '../../src/middleware/validator.js';
import { conformanceApp, conformanceCases, type ConformanceRequest } from '../../src/testing/conformance.js';
import { testClient } from '../../src/testing/test-client.js';
import type { App } from '../../src/types.js';

function sender(app: App) {
  const client = testClient(app);
  return async (request: ConformanceRequest) => {
    const response = await client.request({
      method: request.method,
      url: request.path,
      ...(request.headers ? { headers: request.headers } : {}),
      ...(request.body ? { body: request.body } : {}),
    });
    return { status: response.status, headers: response.headers, body: response.body, errors: response.errors };
  };
}

describe('conformance suite, in memory (testClient)', () => {
  const send = sender(conformanceApp);
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      testCase.check(await send(testCase.request), { scriptName: '', transport: 'memory' });
    });
  }
});

describe('conformance suite, in memory, under validator(): the app and the test client break no rule', () => {
  const send = sender(validator()(conformanceApp));
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      const response = await send(testCase.request);
      testCase.check(response, { scriptName: '', transport: 'memory+validator' });
      expect(response.errors).not.toMatch(/tsgi\.lint/);
    });
  }
});
