import { availableParallelism } from 'node:os';
import { normalizeMount } from '../environ/mount.js';
import { createForwardedPolicy } from '../environ/forwarded-policy.js';
import { DEFAULT_MAX_CONNECTIONS } from '../servers/fastcgi/options.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from '../servers/limits.js';
import { hasInheritedListenSocket, parseListenTarget, socketActivationTarget, type ListenTarget } from '../servers/listen.js';
import type { FlagValues } from './config-file.js';
import { isReloadChild } from './reload.js';
import { cgiBinPlanOf, DEFAULT_GRACEFUL_TIMEOUT_SECONDS, type ServePlan } from './serve-plan.js';

/**
 * Turns the merged flag values into a ServePlan. Throws an Error with a clear message for a bad value. With
 * --cgi-bin: the plan's `cgiBin` and label; the mount defaults to the site root ("/": the path is rebuilt from
 * REQUEST_URI on every transport, as a cgi-bin needs; --mount /cgi-bin puts the folder there), and --timeout
 * is the scripts' time to answer (cgiBin's timeoutMs), not the workers' (scripts run in processes of their
 * own: a slow one blocks no worker).
 */
export function buildPlan(reference: string, values: FlagValues): ServePlan {
  const text = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };
  let transport: ServePlan['transport'];
  let target: ListenTarget;
  let inherited = false;
  const http = text('http');
  const fastcgi = text('fastcgi');
  const scgi = text('scgi');
  const uwsgi = text('uwsgi');
  // ADDR "systemd" (or "systemd:NAME", a name from the .socket unit's FileDescriptorName=) = the socket systemd
  // passed (socket activation); with no transport flag, a socket-activated tsgi serves HTTP on it. When an ADDR
  // asks for it and it is missing, the error says why (a wrapper's pid, no variables, LISTEN_FDS=0).
  const isSystemd = (address: string | undefined): address is string => address === 'systemd' || (address?.startsWith('systemd:') ?? false);
  const wanted = [http, fastcgi, scgi, uwsgi].find(isSystemd);
  const activated = socketActivationTarget(process.env, process.pid, {
    required: wanted !== undefined,
    ...(wanted?.startsWith('systemd:') ? { name: wanted.slice('systemd:'.length) } : {}),
  });
  const addressOf = (address: string): ListenTarget => (isSystemd(address) && activated ? activated : parseListenTarget(address));
  if (fastcgi !== undefined) {
    transport = 'fastcgi';
    target = addressOf(fastcgi);
  } else if (scgi !== undefined) {
    transport = 'scgi';
    target = addressOf(scgi);
  } else if (uwsgi !== undefined) {
    transport = 'uwsgi';
    target = addressOf(uwsgi);
  } else if (http !== undefined) {
    transport = 'http';
    target = addressOf(http);
  } else if (activated) {
    transport = 'http';
    target = activated;
  } else if (hasInheritedListenSocket()) {
    transport = 'fastcgi';
    target = { kind: 'fd', fd: 0 };
    inherited = true;
  } else {
    transport = 'http';
    target = parseListenTarget('127.0.0.1:8000');
  }
  let mode: number | undefined;
  const socketMode = text('socket-mode');
  if (socketMode !== undefined) {
    if (!/^[0-7]{3,4}$/.test(socketMode)) throw new Error(`tsgi serve: --socket-mode is octal, like 660 (${socketMode})`);
    mode = Number.parseInt(socketMode, 8);
  }
  const mount = text('mount');
  const maxBody = text('max-body');
  const accessLog = text('access-log');
  const errorLog = text('error-log');
  const workers = text('workers');
  const cgiBinPlan = cgiBinPlanOf(values, process.cwd());
  return {
    reference,
    ...(cgiBinPlan !== undefined ? { cgiBin: cgiBinPlan, label: `cgi-bin ${cgiBinPlan.folder}` } : {}),
    cwd: process.cwd(),
    transport,
    target,
    ...(mount !== undefined ? { mount: normalizeMount(mount) } : cgiBinPlan !== undefined ? { mount: '' } : {}),
    socket: {
      ...(mode !== undefined ? { mode } : {}),
      ...(text('socket-owner') !== undefined ? { owner: text('socket-owner') as string } : {}),
      ...(text('socket-group') !== undefined ? { group: text('socket-group') as string } : {}),
    },
    ...(maxBody !== undefined ? { maxBodyBytes: parseSize(maxBody, '--max-body') } : {}),
    ...(accessLog !== undefined ? { accessLog } : {}),
    ...(errorLog !== undefined ? { errorLog } : {}),
    // Started by a web server on fd 0: it manages the processes, so no master of our own unless asked.
    workers: workers !== undefined ? parseWorkers(workers) : inherited ? 0 : DEFAULT_WORKERS,
    maxRequests: parseCount(text('max-requests'), '--max-requests', 0),
    maxRequestsJitter: parseCount(text('max-requests-jitter'), '--max-requests-jitter', 0),
    maxRssMiB: parseCount(text('max-rss'), '--max-rss', 0),
    timeoutSeconds: cgiBinPlan !== undefined ? 0 : parseSeconds(text('timeout'), '--timeout', 0),
    gracefulTimeoutSeconds: parseSeconds(text('graceful-timeout'), '--graceful-timeout', DEFAULT_GRACEFUL_TIMEOUT_SECONDS),
    maxConnections: parseMaxConnections(text('max-connections')),
    headerTimeoutMs: parseTimeoutMs(text('header-timeout'), '--header-timeout', DEFAULT_HEADER_TIMEOUT_MS),
    bodyTimeoutMs: parseTimeoutMs(text('body-timeout'), '--body-timeout', DEFAULT_BODY_TIMEOUT_MS),
    // Unset: each server's own default (FastCGI 30 s, HTTP 5 s: Node's keepAliveTimeout).
    ...(text('idle-timeout') !== undefined ? { idleTimeoutMs: parseTimeoutMs(text('idle-timeout'), '--idle-timeout', DEFAULT_IDLE_TIMEOUT_MS) } : {}),
    // The server a reloading parent runs must not reload itself (the flag may come from a config file).
    reload: values.reload === true && !isReloadChild(),
    ...healthPlan(text),
  };
}

/** The health, metrics and proxy flags, checked (a bad value fails at start-up, naming the flag). */
function healthPlan(text: (name: string) => string | undefined): Partial<ServePlan> {
  const plan: Partial<ServePlan> = {};
  for (const [flag, key] of [['ping-path', 'pingPath'], ['status-path', 'statusPath']] as const) {
    const path = text(flag);
    if (path === undefined) continue;
    if (!path.startsWith('/') || /[?#\s]/.test(path)) throw new Error(`tsgi serve: --${flag} is a path starting with "/", without "?" or spaces (${path})`);
    plan[key] = path;
  }
  if (plan.pingPath !== undefined && plan.pingPath === plan.statusPath) throw new Error('tsgi serve: --ping-path and --status-path must differ');
  for (const [flag, key] of [['status-allow', 'statusAllow'], ['forwarded-allow-ips', 'forwardedAllowIps']] as const) {
    const list = text(flag);
    if (list === undefined) continue;
    try {
      createForwardedPolicy(list);
    } catch (error) {
      throw new Error(`tsgi serve: --${flag}: ${(error as Error).message.replace(/^forwarded-allow-ips: /, '')}`);
    }
    plan[key] = list;
  }
  const slow = text('slow-log');
  if (slow !== undefined) plan.slowLogSeconds = parseSeconds(slow, '--slow-log', 0);
  const format = text('access-log-format');
  if (format !== undefined) {
    if (format !== 'combined' && format !== 'json') throw new Error(`tsgi serve: --access-log-format is "combined" or "json" (${format})`);
    plan.accessLogFormat = format;
  }
  return plan;
}

/** Workers when --workers is not given: a master and one worker (src/cli/cluster/). */
const DEFAULT_WORKERS = 1;

function parseWorkers(text: string): number {
  if (text === 'auto') return availableParallelism();
  return parseCount(text, '--workers', 1);
}

function parseCount(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+$/.test(text)) throw new Error(`tsgi serve: ${flag} takes a whole number (${text})`);
  return Number(text);
}

function parseSeconds(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new Error(`tsgi serve: ${flag} takes seconds, like 30 or 2.5 (${text})`);
  return Number(text);
}

/** A peer timeout flag in seconds (0 = off) as milliseconds; at most a day (a larger one is surely a typo). */
function parseTimeoutMs(text: string | undefined, flag: string, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const seconds = parseSeconds(text, flag, 0);
  if (seconds > MAX_TIMEOUT_SECONDS) throw new Error(`tsgi serve: ${flag} takes at most ${MAX_TIMEOUT_SECONDS} seconds, 0 = off (${text})`);
  return Math.round(seconds * 1000);
}

const MAX_TIMEOUT_SECONDS = 86_400;

function parseMaxConnections(text: string | undefined): number {
  const count = parseCount(text, '--max-connections', DEFAULT_MAX_CONNECTIONS);
  if (count < 1) throw new Error(`tsgi serve: --max-connections takes a whole number of 1 or more (${text})`);
  return count;
}

/** "1048576", "512k", "10m", "1g" (binary multiples). */
export function parseSize(text: string, flag: string): number {
  const match = /^([0-9]+)([kmg]?)$/i.exec(text);
  if (!match) throw new Error(`tsgi serve: ${flag} takes a size in bytes, like 10m (${text})`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] as string).toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}

