import { describe, expect, it } from 'vitest';
import { createLimitLog, createPeerLog } from '../../src/servers/limit-log.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1_000_000;
  return { now: () => at, advance: (ms) => void (at += ms) };
}

describe('createPeerLog', () => {
  it('writes one line per kind per interval, then says how many were left out', () => {
    const lines: string[] = [];
    const time = clock();
    const log = createPeerLog({ write: (text) => void lines.push(text) }, 10_000, time.now);
    for (let i = 0; i < 5_000; i++) log.write('malformed', `tsgi: scgi: bad head ${i}`);
    log.write('address', 'tsgi: scgi: refused 10.0.0.1\n');
    expect(lines).toEqual(['tsgi: scgi: bad head 0\n', 'tsgi: scgi: refused 10.0.0.1\n']);
    time.advance(9_999);
    log.write('malformed', 'tsgi: scgi: bad head late');
    expect(lines).toHaveLength(2);
    time.advance(1);
    log.write('malformed', 'tsgi: scgi: bad head next');
    expect(lines[2]).toBe('tsgi: scgi: bad head next (5000 more like it since the last line)\n');
    time.advance(10_000);
    log.write('malformed', 'tsgi: scgi: quiet again');
    expect(lines[3]).toBe('tsgi: scgi: quiet again\n');
  });
});

describe('createLimitLog', () => {
  it('names the limit and how to change it, once per interval per limit', () => {
    const lines: string[] = [];
    const time = clock();
    const log = createLimitLog({ write: (text) => void lines.push(text) }, 'fastcgi', 10_000, time.now);
    log.hit('headerTimeoutMs', 'a connection sent no request in 10 s', '--header-timeout SECONDS');
    log.hit('headerTimeoutMs', 'a connection sent no request in 10 s', '--header-timeout SECONDS');
    log.hit('maxConnections', 'refused a connection', '--max-connections N');
    expect(lines).toEqual([
      'tsgi: fastcgi: a connection sent no request in 10 s: refused at the limit headerTimeoutMs; to change it: --header-timeout SECONDS\n',
      'tsgi: fastcgi: refused a connection: refused at the limit maxConnections; to change it: --max-connections N\n',
    ]);
    time.advance(10_000);
    log.hit('headerTimeoutMs', 'again', '--header-timeout SECONDS');
    expect(lines[2]).toMatch(/^tsgi: fastcgi: again: refused at the limit headerTimeoutMs; to change it: --header-timeout SECONDS \(1 more like it since the last line\)\n$/);
  });
});
