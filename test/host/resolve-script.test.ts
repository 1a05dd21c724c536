import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError } from '../../src/errors.js';
import { resolveScript } from '../../src/host/resolve-script.js';

let root: string;
let bin: string;
const script = '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nok"\n';

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'tsgi-resolve-')));
  bin = join(root, 'cgi-bin');
  await mkdir(join(bin, 'sub'), { recursive: true });
  await mkdir(join(root, 'outside'));
  await writeFile(join(bin, 's.cgi'), script, { mode: 0o755 });
  await writeFile(join(bin, 'sub', 't.cgi'), script, { mode: 0o755 });
  await writeFile(join(bin, 'my script.cgi'), script, { mode: 0o755 });
  await writeFile(join(bin, 'plain.txt'), 'not a script', { mode: 0o644 });
  await writeFile(join(root, 'outside', 'evil.cgi'), script, { mode: 0o755 });
  await symlink(join(bin, 's.cgi'), join(bin, 'link-in.cgi'));
  await symlink(join(bin, 'sub'), join(bin, 'sub-link'));
  await symlink(join(root, 'outside', 'evil.cgi'), join(bin, 'link-out.cgi'));
  await symlink(join(root, 'outside'), join(bin, 'link-out'));
  await symlink(join(bin, 'missing.cgi'), join(bin, 'dangling.cgi'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function refusal(urlPath: string, mountPath = '/cgi-bin'): Promise<RequestError> {
  const error = await resolveScript(bin, urlPath, { mountPath }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RequestError);
  expect((error as RequestError).message).toMatch(/^cgi-host: /);
  return error as RequestError;
}

describe('resolveScript: found scripts', () => {
  it('splits /cgi-bin/s.cgi/a%20b?x=1 into script, raw PATH_INFO and query', async () => {
    expect(await resolveScript(bin, '/cgi-bin/s.cgi/a%20b/c?x=1', { mountPath: '/cgi-bin' })).toEqual({
      scriptPath: join(bin, 's.cgi'),
      scriptName: '/cgi-bin/s.cgi',
      pathInfo: '/a%20b/c',
      queryString: 'x=1',
    });
  });

  it.each([
    ['/cgi-bin/s.cgi', '/cgi-bin/s.cgi', ''],
    ['/cgi-bin/s.cgi/', '/cgi-bin/s.cgi', '/'],
    ['/cgi-bin/sub/t.cgi/x', '/cgi-bin/sub/t.cgi', '/x'],
    ['/cgi-bin/my%20script.cgi/x%2Fy', '/cgi-bin/my script.cgi', '/x%2Fy'],
    ['/cgi-bin/sub-link/t.cgi', '/cgi-bin/sub-link/t.cgi', ''],
  ])('%s', async (urlPath, scriptName, pathInfo) => {
    const found = await resolveScript(bin, urlPath, { mountPath: '/cgi-bin/' });
    expect(found.scriptName).toBe(scriptName);
    expect(found.pathInfo).toBe(pathInfo);
  });

  it('follows a symlink that stays inside the folder to its real path', async () => {
    const found = await resolveScript(bin, '/cgi-bin/link-in.cgi', { mountPath: '/cgi-bin' });
    expect(found.scriptPath).toBe(join(bin, 's.cgi'));
    expect(found.scriptName).toBe('/cgi-bin/link-in.cgi');
  });

  it('mounts at the root by default', async () => {
    expect((await resolveScript(bin, '/s.cgi?q')).scriptName).toBe('/s.cgi');
  });
});

describe('resolveScript: refusals (B18, T37)', () => {
  it.each([
    ['/cgi-bin/../../bin/id', 403, /path traversal refused/],
    ['/cgi-bin/../outside/evil.cgi', 403, /path traversal refused/],
    ['/cgi-bin/%2e%2e/outside/evil.cgi', 403, /path traversal refused/],
    ['/cgi-bin/%2E%2E%2Foutside%2Fevil.cgi', 403, /path traversal refused/],
    ['/cgi-bin/..%5Coutside', 403, /path traversal refused/],
    ['/cgi-bin/./s.cgi', 403, /path traversal refused/],
    ['/cgi-bin/s.cgi%00.txt', 403, /path traversal refused/],
    ['/cgi-bin/link-out.cgi', 403, /symlink leads outside the cgi-bin folder/],
    ['/cgi-bin/link-out/evil.cgi', 403, /symlink leads outside the cgi-bin folder/],
    ['/cgi-bin/plain.txt', 403, /script is not executable/],
    ['/cgi-bin/nope.cgi/x', 404, /no such script \(\/cgi-bin\/nope.cgi\/x\)/],
    ['/cgi-bin/dangling.cgi', 404, /dangling symlink/],
    ['/cgi-bin/sub', 404, /names a folder/],
    ['/cgi-bin/sub//t.cgi', 404, /empty path segment/],
    ['/cgi-bin', 404, /outside the cgi-bin mount/],
    ['/elsewhere/s.cgi', 404, /outside the cgi-bin mount/],
    ['/cgi-binx/s.cgi', 404, /outside the cgi-bin mount/],
    ['/cgi-bin/%FF.cgi', 404, /not UTF-8/],
  ])('%s -> %i', async (urlPath, status, message) => {
    const error = await refusal(urlPath);
    expect(error.status).toBe(status);
    expect(error.message).toMatch(message);
  });

  it('answers 404 for a missing folder', async () => {
    const error = await resolveScript(join(root, 'nope'), '/s.cgi').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).status).toBe(404);
  });
});
