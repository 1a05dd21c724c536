import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';
import { runCgi } from '../../src/host/run-cgi.js';
import { conformanceCases, type ConformanceRequest } from '../../src/testing/conformance.js';

const SCRIPT_NAME = '/cgi-bin/conformance.cgi';

describe('conformance suite: runWithCgi through pipes, driven by the CGI host', () => {
  let dir: string;
  let script: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsgi-conf-cgi-'));
    script = join(dir, 'conformance.cgi');
    await buildCgi('cgi-bin/conformance.ts', script);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function send(request: ConformanceRequest) {
    const response = await runCgi(
      script,
      { method: request.method, url: request.path, headers: request.headers ?? [], ...(request.body ? { body: request.body } : {}) },
      { scriptName: SCRIPT_NAME },
    );
    return { status: response.status, headers: response.headers, body: response.body };
  }

  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      testCase.check(await send(testCase.request), { scriptName: SCRIPT_NAME, transport: 'cgi-pipes' });
    });
  }
});
