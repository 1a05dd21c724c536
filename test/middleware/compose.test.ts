import { describe, expect, it } from 'vitest';
import { compose } from '../../src/middleware/compose.js';
import type { App, Middleware } from '../../src/types.js';
import { buildEnviron, headerOf, runApp } from './helpers.js';

/** A middleware that appends its name to an X-Trace header and to the environ's trail. */
function tag(name: string): Middleware {
  return (app) => (environ, startResponse) => {
    environ['test.trail'] = `${String(environ['test.trail'] ?? '')}${name}>`;
    return app(environ, (status, headers, excInfo) => {
      const trace = headers.find(([key]) => key === 'X-Trace');
      const rest = headers.filter(([key]) => key !== 'X-Trace');
      return startResponse(status, [...rest, ['X-Trace', `${trace?.[1] ?? ''}<${name}`]], excInfo);
    });
  };
}

const endpoint: App = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return [String(environ['test.trail'])];
};

describe('compose', () => {
  it('makes the first middleware the outermost', async () => {
    const app = compose(tag('a'), tag('b'), tag('c'))(endpoint);
    const result = await runApp(app);
    expect(result.text).toBe('a>b>c>');
    expect(headerOf(result, 'X-Trace')).toBe('<c<b<a');
  });

  it('returns the app directly when the last argument is an app', async () => {
    const app = compose(tag('a'), tag('b'), endpoint);
    const result = await runApp(app);
    expect(result.text).toBe('a>b>');
  });

  it('with no middleware is the identity', async () => {
    expect(compose()(endpoint)).toBe(endpoint);
  });

  it('accepts an app alone', async () => {
    expect(compose(endpoint)).toBe(endpoint);
    expect((await runApp(compose(endpoint), buildEnviron())).text).toBe('undefined');
  });

  it('refuses a non-function and a middleware that returns no app', () => {
    expect(() => compose(tag('a'), 42 as unknown as Middleware)).toThrow(/compose: argument 1 is not a function \(number\)/);
    const broken = (() => undefined) as unknown as Middleware;
    expect(() => compose(broken)(endpoint)).toThrow(/compose: middleware 0 did not return an app/);
  });
});
