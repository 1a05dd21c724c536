import { describe, expect, it } from 'vitest';
import { createEnviron } from '../../src/environ/create-environ.js';
import { RequestError } from '../../src/errors.js';
import { runApp, runAppEagerly, type ResponseSink } from '../../src/response/run-app.js';
import type { App, Header } from '../../src/types.js';

function record() {
  const events: string[] = [];
  let head: { code: number; reason: string; headers: Header[] } | null = null;
  const body: Buffer[] = [];
  const sink: ResponseSink = {
    sendHead: (code, reason, headers) => {
      head = { code, reason, headers };
      events.push(`head ${code}`);
    },
    write: (chunk) => {
      body.push(Buffer.from(chunk));
      events.push(`write ${chunk.length}`);
    },
    end: () => void events.push('end'),
    abort: () => void events.push('abort'),
  };
  return { sink, events, body: () => Buffer.concat(body).toString(), head: () => head };
}

function environ(method = 'GET', signal?: AbortSignal) {
  let errors = '';
  const env = createEnviron({
    variables: { REQUEST_METHOD: method },
    errors: { write: (t) => void (errors += t) },
    ...(signal ? { signal } : {}),
  });
  return { env, errors: () => errors };
}

describe('runApp', () => {
  it("SPEC 4.1: an empty chunk or write('') before any body byte sends the head now and flushes the sink", async () => {
    const r = record();
    const flushed: string[] = [];
    const sink: ResponseSink = { ...r.sink, flush: () => void flushed.push(r.events.join(',')) };
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const run = runApp(
      (_e, start) => {
        start('200 OK', [['Content-Type', 'text/event-stream']]);
        return (async function* () {
          yield '';
          yield '';
          await gate;
          yield 'data: x\n\n';
        })();
      },
      environ().env,
      sink,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The head went out and was flushed once, while the body still waits.
    expect(r.events).toEqual(['head 200']);
    expect(flushed).toEqual(['head 200']);
    release();
    await run;
    expect(r.events).toEqual(['head 200', 'write 9', 'end']);
    expect(r.head()?.headers).not.toContainEqual(['Content-Length', '0']);

    const w = record();
    const writeFlushes: number[] = [];
    await runApp(
      (_e, start) => {
        const write = start('200 OK', [['Content-Type', 'text/plain']]);
        return (async function* () {
          await write('');
          writeFlushes.push(w.events.length);
          yield 'x';
        })();
      },
      environ().env,
      { ...w.sink, flush: () => void writeFlushes.push(-1) },
    );
    expect(writeFlushes).toEqual([-1, 1]);
    expect(w.events).toEqual(['head 200', 'write 1', 'end']);
  });

  it('sends the head with the first non-empty chunk, then the body, then end (a sink without flush)', async () => {
    const r = record();
    const app: App = (_e, start) => {
      start('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield '';
        yield 'a';
        yield new Uint8Array([0x62]);
      })();
    };
    const result = await runApp(app, environ().env, r.sink);
    expect(r.events).toEqual(['head 200', 'write 1', 'write 1', 'end']);
    expect(r.body()).toBe('ab');
    expect(result).toMatchObject({ ok: true, status: 200, bytes: 2 });
  });

  it('computes Content-Length for an array body, and 0 for an empty one', async () => {
    const r = record();
    await runApp((_e, s) => (s('200 OK', [['Content-Type', 'text/plain']]), ['ab', 'c\u00e9']), environ().env, r.sink);
    expect(r.head()?.headers).toContainEqual(['Content-Length', '5']);
    const empty = record();
    await runApp((_e, s) => (s('200 OK', [['Content-Type', 'text/plain']]), (function* () {})()), environ().env, empty.sink);
    expect(empty.head()?.headers).toContainEqual(['Content-Length', '0']);
    const noContent = record();
    await runApp((_e, s) => (s('204 No Content', []), []), environ().env, noContent.sink);
    expect(noContent.head()?.headers).toEqual([]);
  });

  it('HEAD: headers as for GET, no body iterated, close still runs', async () => {
    const r = record();
    let iterated = false;
    let closed = 0;
    const app: App = (_e, s) => {
      s('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', '5']]);
      const body = (function* () {
        iterated = true;
        yield 'hello';
      })();
      return Object.assign(body, { close: () => void closed++ });
    };
    await runApp(app, environ('HEAD').env, r.sink);
    expect(r.events).toEqual(['head 200', 'end']);
    expect(iterated).toBe(false);
    expect(closed).toBe(1);
  });

  it('an error before the head -> 500 page, details only to tsgi.errors; close runs once', async () => {
    const r = record();
    const e = environ();
    let closed = 0;
    const app: App = (_env, s) => {
      s('200 OK', [['Content-Type', 'text/plain']]);
      const body = (function* () {
        throw new Error('boom detail');
      })();
      return Object.assign(body, { close: () => void closed++ });
    };
    const result = await runApp(app, e.env, r.sink);
    expect(r.head()?.code).toBe(500);
    expect(r.body()).toBe('500 Internal Server Error\n');
    expect(e.errors()).toContain('boom detail');
    expect(closed).toBe(1);
    expect(result).toMatchObject({ ok: false, status: 500, failedAfterHead: false });
  });

  it('a RequestError keeps its 4xx status', async () => {
    const r = record();
    await runApp(() => Promise.reject(new RequestError('nope', 413)), environ().env, r.sink);
    expect(r.head()?.code).toBe(413);
  });

  it('an error after the head -> logged and the sink aborted, never a second head', async () => {
    const r = record();
    const e = environ();
    const result = await runApp(
      (_env, s) => {
        s('200 OK', [['Content-Type', 'text/plain']]);
        return (function* () {
          yield 'x';
          throw new Error('late');
        })();
      },
      e.env,
      r.sink,
    );
    expect(r.events).toEqual(['head 200', 'write 1', 'abort']);
    expect(result.failedAfterHead).toBe(true);
    expect(e.errors()).toContain('late');
  });

  it('excInfo replaces unsent headers and re-throws once they are sent', async () => {
    const r = record();
    await runApp(
      (_env, s) => {
        s('200 OK', [['Content-Type', 'text/plain']]);
        s('503 Busy', [['Content-Type', 'text/plain']], new Error('x'));
        return ['later'];
      },
      environ().env,
      r.sink,
    );
    expect(r.head()?.code).toBe(503);
    const sent = record();
    const e = environ();
    let rethrown: unknown;
    await runApp(
      (_env, s) => {
        const write = s('200 OK', [['Content-Type', 'text/plain']]);
        return (async function* () {
          await write('a');
          try {
            s('500 Oops', [], new Error('original'));
          } catch (error) {
            rethrown = error;
          }
          yield 'b';
        })();
      },
      e.env,
      sent.sink,
    );
    expect((rethrown as Error).message).toBe('original');
    expect(sent.body()).toBe('ab');
  });

  it('rejects misuse: second startResponse without excInfo, bad status, CR/LF in a value, string body', async () => {
    const cases: App[] = [
      (_e, s) => (s('200 OK', []), s('200 OK', []), ['x']),
      (_e, s) => (s('OK', []), ['x']),
      (_e, s) => (s('200 OK', [['X-A', 'a\r\nSet-Cookie: evil=1']]), ['x']),
      (_e, s) => (s('200 OK', [['Status', '200']]), ['x']),
      (_e, s) => (s('200 OK', []), 'a string' as never),
      () => ['no startResponse'],
    ];
    for (const app of cases) {
      const r = record();
      const e = environ();
      await runApp(app, e.env, r.sink);
      expect(r.head()?.code).toBe(500);
      expect(e.errors()).toMatch(/response: /);
    }
  });

  it('G3: extra bytes past Content-Length are dropped; missing bytes fail the response', async () => {
    const over = record();
    const e = environ();
    await runApp((_env, s) => (s('200 OK', [['Content-Length', '3']]), ['abcdef']), e.env, over.sink);
    expect(over.body()).toBe('abc');
    expect(e.errors()).toContain('more than its Content-Length');
    const under = record();
    const result = await runApp(
      (_env, s) => (s('200 OK', [['Content-Length', '10']]), (function* () { yield 'abc'; })()),
      environ().env,
      under.sink,
    );
    expect(under.events).toEqual(['head 200', 'write 3', 'abort']);
    expect(result.failedAfterHead).toBe(true);
  });

  it('stops iterating when the client goes away and runs close()', async () => {
    const controller = new AbortController();
    const r = record();
    let produced = 0;
    let closed = 0;
    const app: App = (_e, s) => {
      s('200 OK', [['Content-Type', 'text/plain']]);
      const body = (function* () {
        for (;;) {
          produced++;
          if (produced === 3) controller.abort();
          yield 'x';
        }
      })();
      return Object.assign(body, { close: () => void closed++ });
    };
    const result = await runApp(app, environ('GET', controller.signal).env, r.sink);
    expect(result.aborted).toBe(true);
    expect(produced).toBeLessThan(5);
    expect(closed).toBe(1);
  });
  describe('a Content-Length two readers could frame differently is refused before the head (500, logged)', () => {
    const bad: Array<[string, Header[]]> = [
      ['negative', [['Content-Length', '-1']]],
      ['not a number', [['Content-Length', 'abc']]],
      ['a list', [['Content-Length', '3, 50']]],
      ['a sign', [['Content-Length', '+3']]],
      ['empty', [['Content-Length', '']]],
      ['spaces', [['Content-Length', ' 3']]],
      ['past 2^53', [['Content-Length', '9007199254740993']]],
      ['two different values', [['Content-Length', '3'], ['content-length', '50']]],
    ];
    it.each(bad)('%s', async (_name, headers) => {
      const r = record();
      const e = environ();
      const result = await runApp((_e, s) => (s('200 OK', [['Content-Type', 'text/plain'], ...headers]), ['abc']), e.env, r.sink);
      expect(result).toMatchObject({ ok: false, status: 500 });
      expect(r.head()?.code).toBe(500);
      expect(r.head()?.headers).toContainEqual(['Content-Length', String(r.body().length)]);
      expect(r.head()?.headers.filter(([name]) => name.toLowerCase() === 'content-length')).toHaveLength(1);
      expect(e.errors()).toMatch(/app failed: .*Content-Length/);
    });

    it('two identical values are collapsed to one; the largest safe integer is still a length', async () => {
      const r = record();
      await runApp((_e, s) => (s('200 OK', [['Content-Length', '3'], ['X-A', '1'], ['CONTENT-LENGTH', '3']]), ['abc']), environ().env, r.sink);
      expect(r.head()).toEqual({ code: 200, reason: 'OK', headers: [['Content-Length', '3'], ['X-A', '1']] });
      expect(r.body()).toBe('abc');
      const big = record();
      await runApp((_e, s) => (s('200 OK', [['Content-Length', '9007199254740991']]), []), environ('HEAD').env, big.sink);
      expect(big.head()?.code).toBe(200);
    });

    it('the app sees the refusal in startResponse and may answer otherwise with excInfo', async () => {
      const r = record();
      const app: App = (_e, s) => {
        try {
          s('200 OK', [['Content-Length', '-1']]);
        } catch (error) {
          s('502 Bad Gateway', [['Content-Type', 'text/plain']], error);
        }
        return ['upstream'];
      };
      await runApp(app, environ().env, r.sink);
      expect(r.head()?.code).toBe(502);
      expect(r.body()).toBe('upstream');
    });
  });
  describe('the header list is taken when startResponse checks it', () => {
    it('a field the app pushes after startResponse reaches neither the check nor the head', async () => {
      const r = record();
      const app: App = (_e, s) => {
        const headers: Header[] = [['Content-Type', 'text/plain']];
        s('200 OK', headers);
        headers.push(['X-Late', 'a\r\nSet-Cookie: evil=1']);
        headers.push(['Content-Length', '2']);
        return ['abc'];
      };
      const result = await runApp(app, environ().env, r.sink);
      expect(result).toMatchObject({ ok: true, status: 200 });
      expect(r.head()?.headers).toEqual([['Content-Type', 'text/plain'], ['Content-Length', '3']]);
      expect(r.body()).toBe('abc');
    });

    it('a pair the app replaces in place after startResponse does not reach the head', async () => {
      const r = record();
      const app: App = (_e, s) => {
        const headers: Header[] = [['Content-Type', 'text/plain'], ['X-Name', 'ok']];
        s('200 OK', headers);
        headers[1] = ['X-Name', 'a\r\nSet-Cookie: evil=1'];
        return ['abc'];
      };
      await runApp(app, environ().env, r.sink);
      expect(r.head()?.headers).toEqual([['Content-Type', 'text/plain'], ['X-Name', 'ok'], ['Content-Length', '3']]);
    });

    it('runApp adds its Content-Length to a new list: the app\'s stays as it gave it', async () => {
      const r = record();
      const headers: Header[] = [['Content-Type', 'text/plain']];
      await runApp((_e, s) => (s('200 OK', headers), ['abc']), environ().env, r.sink);
      expect(headers).toEqual([['Content-Type', 'text/plain']]);
      expect(r.head()?.headers).toEqual([['Content-Type', 'text/plain'], ['Content-Length', '3']]);
    });

    it('the sink is told what the check found: framing fields, hop-by-hop fields, wide chars', async () => {
      const facts: unknown[] = [];
      const r = record();
      const sink: ResponseSink = { ...r.sink, sendHead: (_code, _reason, _headers, found) => {
          facts.push({ contentLength: found?.contentLength, transferEncoding: found?.transferEncoding, hopByHop: found?.hopByHop, wide: found?.wide });
        },
      };
      const answer = (headers: Header[]): App => (_e, s) => (s('200 OK', headers), ['abc']);
      await runApp(answer([['Content-Type', 'text/plain']]), environ().env, sink);
      await runApp(answer([['transfer-encoding', 'chunked'], ['X-Name', 'caf\u00e9 \u2603']]), environ().env, sink);
      await runApp(answer([['Content-Length', '3'], ['Keep-Alive', 'timeout=5']]), environ().env, sink);
      expect(facts).toEqual([
        { contentLength: '3', transferEncoding: false, hopByHop: false, wide: false },
        { contentLength: undefined, transferEncoding: true, hopByHop: true, wide: true },
        { contentLength: '3', transferEncoding: false, hopByHop: true, wide: false },
      ]);
    });
  });

  describe('runAppEagerly: a run that completes within the call returns null, no promise', () => {
    const alive = { reason: null };
    const hello: App = (_e, start) => {
      start('200 OK', [['Content-Type', 'text/plain']]);
      return ['hel', 'lo'];
    };

    it('a synchronous app on a sink that never waits: null, the response already complete', () => {
      const r = record();
      expect(runAppEagerly(hello, environ().env, r.sink, alive)).toBeNull();
      expect(r.events).toEqual(['head 200', 'write 3', 'write 2', 'end']);
      expect(r.head()?.headers).toEqual([['Content-Type', 'text/plain'], ['Content-Length', '5']]);
      // The same response as runApp's.
      const s = record();
      return runApp(hello, environ().env, s.sink).then((result) => {
        expect(s.events).toEqual(r.events);
        expect(result).toEqual({ status: 200, bytes: 5, ok: true, failedAfterHead: false, aborted: false });
      });
    });

    it('an async app, a sink that waits, or a failure: the promise of the result, as runApp gives it', async () => {
      const r = record();
      const run = runAppEagerly(async (e, start) => hello(e, start), environ().env, r.sink, alive);
      expect(run).toBeInstanceOf(Promise);
      expect(await run).toEqual({ status: 200, bytes: 5, ok: true, failedAfterHead: false, aborted: false });
      expect(r.events).toEqual(['head 200', 'write 3', 'write 2', 'end']);

      const w = record();
      const waiting: ResponseSink = { ...w.sink, write: (chunk) => Promise.resolve(w.sink.write(chunk)) };
      const waited = runAppEagerly(hello, environ().env, waiting, alive);
      expect(waited).toBeInstanceOf(Promise);
      expect(await waited).toMatchObject({ status: 200, bytes: 5, ok: true });
      expect(w.events).toEqual(['head 200', 'write 3', 'write 2', 'end']);

      const f = record();
      const e = environ();
      const failed = runAppEagerly(() => { throw new Error('boom'); }, e.env, f.sink, alive);
      expect(failed).toBeInstanceOf(Promise);
      expect(await failed).toMatchObject({ status: 500, ok: false });
      expect(f.events).toEqual(['head 500', 'write 26', 'end']);
      expect(e.errors()).toContain('boom');
    });

    it('HEAD: the body is not walked, the run still completes within the call', () => {
      const r = record();
      let walked = false;
      const app: App = (_e, start) => {
        start('200 OK', []);
        return { [Symbol.iterator]: () => { walked = true; return [][Symbol.iterator](); } };
      };
      expect(runAppEagerly(app, environ('HEAD').env, r.sink, alive)).toBeNull();
      expect(walked).toBe(false);
      expect(r.events).toEqual(['head 200', 'end']);
    });
  });
});
