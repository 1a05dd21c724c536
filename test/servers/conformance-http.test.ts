import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validator } from '../../src/middleware/validator.js';
import { createHttpServer } from '../../src/servers/http.js';
import { conformanceApp, conformanceCases, type ConformanceRequest } from '../../src/testing/conformance.js';

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

  async function send(request: ConformanceRequest) {
    const init: RequestInit = { method: request.method, headers: request.headers ?? [], redirect: 'manual' };
    if (request.body) init.body = request.body as unknown as BodyInit;
    const response = await fetch(`${base}${request.path}`, init);
    const headers: Array<[string, string]> = [];
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') headers.push([name, value]);
    });
    for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
    return { status: response.status, headers, body: new Uint8Array(await response.arrayBuffer()) };
  }

  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      errors = '';
      testCase.check(await send(testCase.request), { scriptName: '', transport: 'http' });
      expect(errors).not.toMatch(/tsgi\.lint/);
    });
  }
});
