import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validator } from '../../src/middleware/validator.js';
import { createHttpServer } from '../../src/servers/http.js';
import { conformanceApp, conformanceCases } from '../../src/testing/conformance.js';
import { createFetchClient } from '../../src/testing/fetch-client.js';

describe('conformance suite over the embedded HTTP server, under validator() (checks the server too)', () => {
  let server: Server;
  let base = '';
  let errors = '';
  beforeAll(async () => {
    server = createHttpServer(validator()(conformanceApp), { errors: { write: (text) => void (errors += text) } });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      errors = '';
      testCase.check(await createFetchClient(base)(testCase.request), { scriptName: '', transport: 'http' });
      expect(errors).not.toMatch(/tsgi\.lint/);
    });
  }
});
