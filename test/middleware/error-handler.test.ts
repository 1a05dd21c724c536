import { describe, expect, it } from 'vitest';
import { RequestError } from '../../src/errors.js';
import { errorHandler } from '../../src/middleware/error-handler.js';
import type { App, Body } from '../../src/types.js';
import { buildEnviron, headerOf, runApp, trackedBody } from './helpers.js';

const ok = (body: Body): App => (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return body;
};

describe('errorHandler', () => {
  it('turns a synchronous throw into a generic 500 and logs the stack', async () => {
    const app = errorHandler()(() => {
      throw new Error('secret detail');
    });
    const result = await runApp(app);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('500 Internal Server Error');
    expect(headerOf(result, 'Content-Type')).toBe('text/plain; charset=utf-8');
    expect(result.text).toBe('500 Internal Server Error\n');
    expect(headerOf(result, 'Content-Length')).toBe(String(result.body.length));
    expect(result.text).not.toContain('secret');
    expect(result.errors).toContain('secret detail');
    expect(result.errors).toMatch(/at .*error-handler\.test\.ts/);
  });

  it('passes the error as excInfo so the server replaces the head the app had set', async () => {
    const failure = new Error('late');
    const app = errorHandler()(async (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'application/json']]);
      throw failure;
    });
    const result = await runApp(app);
    expect(result.calls).toHaveLength(2);
    expect(result.calls[1]?.excInfo).toBe(failure);
    expect(result.status).toBe('500 Internal Server Error');
    expect(headerOf(result, 'Content-Type')).toBe('text/plain; charset=utf-8');
  });

  it('catches a failure while the body is iterated before any byte, and closes the body once', async () => {
    const body = trackedBody(['', 'never'], { failAt: 1, error: new Error('iteration broke') });
    const result = await runApp(errorHandler()(ok(body)));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('500 Internal Server Error');
    expect(result.text).toBe('500 Internal Server Error\n');
    expect(body.closed).toBe(1);
    expect(result.closeCalls).toBe(1);
    expect(result.errors).toContain('iteration broke');
  });

  it('re-throws a failure after the head was sent, still closing the body once', async () => {
    const failure = new Error('mid-body');
    const body = trackedBody(['first', 'second'], { failAt: 1, error: failure });
    const result = await runApp(errorHandler()(ok(body)));
    expect(result.error).toBe(failure);
    expect(result.text).toBe('first');
    expect(result.calls).toHaveLength(1);
    expect(body.closed).toBe(1);
    expect(result.errors).toContain('after the response head was sent');
  });

  it('re-throws when the app wrote bytes before failing', async () => {
    const failure = new Error('after write');
    const app = errorHandler()(async (_environ, startResponse) => {
      const write = startResponse('200 OK', [['Content-Type', 'text/plain']]);
      await write('partial');
      throw failure;
    });
    const result = await runApp(app);
    expect(result.error).toBe(failure);
    expect(result.text).toBe('partial');
  });

  it('answers an error carrying a 4xx status with that status and a short page', async () => {
    const app = errorHandler()(() => {
      throw new RequestError('request: body is not valid JSON (Unexpected token)', 400);
    });
    const result = await runApp(app);
    expect(result.status).toBe('400 Bad Request');
    expect(result.text).toBe('400 Bad Request\n');
    expect(result.errors).toBe('tsgi.error-handler: request refused (400): request: body is not valid JSON (Unexpected token)\n');
  });

  it('respects a status on a plain error object but ignores one out of range', async () => {
    const teapot = Object.assign(new Error('x'), { status: 418 });
    expect((await runApp(errorHandler()(() => Promise.reject(teapot)))).status).toBe("418 I'm a teapot");
    const weird = Object.assign(new Error('x'), { status: 302 });
    expect((await runApp(errorHandler()(() => Promise.reject(weird)))).status).toBe('500 Internal Server Error');
  });

  it('shows the stack only with expose, and escapes it in HTML', async () => {
    const app = errorHandler({ expose: true, format: 'html' })(() => {
      throw new Error('<b>bad</b>');
    });
    const result = await runApp(app);
    expect(headerOf(result, 'Content-Type')).toBe('text/html; charset=utf-8');
    expect(result.text).toContain('&#60;b&#62;bad&#60;/b&#62;');
    expect(result.text).not.toContain('<b>bad');
  });

  it('picks HTML from the Accept header in auto mode', async () => {
    const app = errorHandler()(() => {
      throw new Error('x');
    });
    const result = await runApp(app, buildEnviron('/', { HTTP_ACCEPT: 'text/html,*/*;q=0.8' }));
    expect(headerOf(result, 'Content-Type')).toBe('text/html; charset=utf-8');
    expect(result.text).toContain('<h1>500 Internal Server Error</h1>');
  });

  it('sends no page body to a HEAD request but keeps its headers', async () => {
    const app = errorHandler()(() => {
      throw new Error('x');
    });
    const result = await runApp(app, buildEnviron('/', { REQUEST_METHOD: 'HEAD' }));
    expect(result.status).toBe('500 Internal Server Error');
    expect(result.body.length).toBe(0);
    expect(headerOf(result, 'Content-Length')).toBe('26');
  });

  it('re-throws when the client went away', async () => {
    const controller = new AbortController();
    controller.abort();
    const failure = new Error('gone');
    const result = await runApp(
      errorHandler()(() => Promise.reject(failure)),
      buildEnviron('/', { 'tsgi.signal': controller.signal }),
    );
    expect(result.error).toBe(failure);
    expect(result.calls).toHaveLength(0);
  });

  it('leaves a working app alone and closes its body exactly once', async () => {
    const body = trackedBody(['a', 'b']);
    const result = await runApp(errorHandler()(ok(body)));
    expect(result.text).toBe('ab');
    expect(result.status).toBe('200 OK');
    expect(body.closed).toBe(1);
    expect(result.errors).toBe('');
  });

  it('closes the body once when the server stops early, ending a generator body', async () => {
    let finalized = false;
    const app = errorHandler()((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        try {
          yield 'one';
          yield 'two';
        } finally {
          finalized = true;
        }
      })();
    });
    const result = await runApp(app, buildEnviron(), { stopAfter: 1 });
    expect(result.text).toBe('one');
    expect(result.closeCalls).toBe(1);
    expect(finalized).toBe(true);
  });

  it('logs through options.log when given', async () => {
    const lines: string[] = [];
    const app = errorHandler({ log: (text) => lines.push(text) })(() => {
      throw new Error('to the log');
    });
    const result = await runApp(app);
    expect(result.errors).toBe('');
    expect(lines.join('')).toContain('to the log');
  });
});
