import { describe, expect, it } from 'vitest';
import { urlMap } from '../../src/middleware/url-map.js';
import type { App, Environ } from '../../src/types.js';
import { buildEnviron, headerOf, runApp } from './helpers.js';

/** An app that answers "<name> SCRIPT_NAME|PATH_INFO". */
function echo(name: string): App {
  return (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']]);
    return [`${name} ${environ.SCRIPT_NAME}|${environ.PATH_INFO}`];
  };
}

describe('urlMap', () => {
  const app = urlMap({ '/': echo('root'), '/api': echo('api'), '/api/v2': echo('v2'), '/static/': echo('static') });

  it.each([
    ['/api', 'api /api|'],
    ['/api/', 'api /api|/'],
    ['/api/users', 'api /api|/users'],
    ['/apix', 'root |/apix'],
    ['/api/v2/x', 'v2 /api/v2|/x'],
    ['/api/v20', 'api /api|/v20'],
    ['/static/a.css', 'static /static|/a.css'],
    ['/', 'root |/'],
  ])('routes %s by longest segment prefix', async (path, expected) => {
    expect((await runApp(app, buildEnviron(path))).text).toBe(expected);
  });

  it('appends to an existing SCRIPT_NAME and leaves the caller\'s environ alone', async () => {
    const environ = buildEnviron('/api/users', { SCRIPT_NAME: '/mount' });
    let seen: Environ | undefined;
    const mapped = urlMap({ '/api': (env, sr) => ((seen = env), echo('api')(env, sr)) });
    const result = await runApp(mapped, environ);
    expect(result.text).toBe('api /mount/api|/users');
    expect(environ.SCRIPT_NAME).toBe('/mount');
    expect(environ.PATH_INFO).toBe('/api/users');
    expect(seen).not.toBe(environ);
    expect(seen?.['tsgi.input']).toBe(environ['tsgi.input']);
  });

  it('answers 404 text/plain when nothing matches, with an empty body for HEAD', async () => {
    const mapped = urlMap({ '/api': echo('api') });
    const result = await runApp(mapped, buildEnviron('/nope'));
    expect(result.status).toBe('404 Not Found');
    expect(headerOf(result, 'Content-Type')).toBe('text/plain; charset=utf-8');
    expect(result.text).toBe('Not Found\n');
    const head = await runApp(mapped, buildEnviron('/nope', { REQUEST_METHOD: 'HEAD' }));
    expect(head.status).toBe('404 Not Found');
    expect(head.body.length).toBe(0);
  });

  it('uses a custom notFound app', async () => {
    const mapped = urlMap({ '/api': echo('api') }, { notFound: echo('fallback') });
    expect((await runApp(mapped, buildEnviron('/x'))).text).toBe('fallback |/x');
  });

  it('matches non-ASCII prefixes as UTF-8 bytes under the byte policy', async () => {
    const mapped = urlMap({ '/café': echo('cafe') });
    const result = await runApp(mapped, buildEnviron('/caf%C3%A9/menu'));
    expect(result.text).toBe(Buffer.from('cafe /café|/menu', 'utf8').toString('latin1'));
  });

  it('prefers host-specific mounts and matches the Host header with or without port', async () => {
    const mapped = urlMap({
      '/': echo('any'),
      'http://api.example.com/': echo('api-host'),
      'https://admin.example.com/panel': echo('admin'),
    });
    const onHost = (host: string, path = '/x'): Environ => buildEnviron(path, { HTTP_HOST: host });
    expect((await runApp(mapped, onHost('api.example.com:8080'))).text).toBe('api-host |/x');
    expect((await runApp(mapped, onHost('API.example.com'))).text).toBe('api-host |/x');
    expect((await runApp(mapped, onHost('admin.example.com', '/panel/users'))).text).toBe('admin /panel|/users');
    expect((await runApp(mapped, onHost('admin.example.com', '/other'))).text).toBe('any |/other');
    expect((await runApp(mapped, onHost('other.example.com'))).text).toBe('any |/x');
  });

  it('accepts an iterable of pairs and refuses bad prefixes', async () => {
    const mapped = urlMap(new Map([['/a', echo('a')]]));
    expect((await runApp(mapped, buildEnviron('/a/b'))).text).toBe('a /a|/b');
    expect(() => urlMap({ api: echo('x') })).toThrow('url-map: prefix must start with "/" ("api")');
    expect(() => urlMap({ '/x': 'nope' as unknown as App })).toThrow(/url-map: mount must be an app/);
  });
});
