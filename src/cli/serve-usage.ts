import { DEFAULT_FORWARDED_ALLOW_IPS } from '../environ/forwarded-policy.js';
import { DEFAULT_MAX_CONNECTIONS } from '../servers/fastcgi/options.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from '../servers/limits.js';
import { DEFAULT_STATUS_ALLOW } from './status/snapshot.js';
import { DEFAULT_GRACEFUL_TIMEOUT_SECONDS } from './serve-plan.js';

/**
 * Every flag `tsgi serve` accepts, as parseArgs takes them. The help text, the config file's keys and the
 * test that checks the help documents every flag all derive from this table.
 */
export const SERVE_OPTIONS = {
  http: { type: 'string' },
  fastcgi: { type: 'string' },
  scgi: { type: 'string' },
  uwsgi: { type: 'string' },
  cgi: { type: 'boolean' },
  config: { type: 'string', short: 'c' },
  mount: { type: 'string' },
  'socket-mode': { type: 'string' },
  'socket-owner': { type: 'string' },
  'socket-group': { type: 'string' },
  workers: { type: 'string', short: 'w' },
  'max-requests': { type: 'string' },
  'max-requests-jitter': { type: 'string' },
  'max-rss': { type: 'string' },
  timeout: { type: 'string', short: 't' },
  'graceful-timeout': { type: 'string' },
  'max-body': { type: 'string' },
  'max-connections': { type: 'string' },
  'header-timeout': { type: 'string' },
  'body-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'access-log': { type: 'string' },
  'access-log-format': { type: 'string' },
  'error-log': { type: 'string' },
  'slow-log': { type: 'string' },
  'ping-path': { type: 'string' },
  'status-path': { type: 'string' },
  'status-allow': { type: 'string' },
  'forwarded-allow-ips': { type: 'string' },
  'cgi-bin': { type: 'string' },
  'cgi-interpreter': { type: 'string', multiple: true },
  'cgi-env': { type: 'string', multiple: true },
  'cgi-read-ahead': { type: 'boolean' },
  reload: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags that choose a transport: one at most. */
export const TRANSPORT_FLAGS = ['http', 'fastcgi', 'scgi', 'uwsgi', 'cgi'] as const;

export const SERVE_USAGE = `usage: tsgi serve [MODULE[:EXPORT]] [options]
       tsgi serve --cgi-bin DIR [options]

Loads the app MODULE exports and serves it until SIGINT or SIGTERM. MODULE is TypeScript or JavaScript
(TypeScript loads without a build step); the app is EXPORT, else the default export, else the export "app".
With --cgi-bin, serves the CGI programs in DIR instead (no MODULE then), over any transport below.

Transports (one at most; ADDR is HOST:PORT, :PORT or PORT (host 127.0.0.1), [V6]:PORT, unix:PATH, fd:N,
or "systemd" / "systemd:NAME" for the socket systemd passed):
  --http ADDR               HTTP/1.1, the embedded server
  --fastcgi ADDR            FastCGI, for nginx fastcgi_pass, Apache mod_proxy_fcgi, lighttpd, mod_fcgid
  --scgi ADDR               SCGI (one request per connection)
  --uwsgi ADDR              the uwsgi protocol (one request per connection)
  --cgi                     answer one CGI request (environment + stdin -> stdout), then exit
  Without one, from how tsgi was started: CGI when GATEWAY_INTERFACE is set (a web server ran it as a CGI
  script); FastCGI on fd 0 when fd 0 is a listening socket (mod_fcgid, lighttpd bin-path, spawn-fcgi); HTTP
  on the socket systemd passed (socket activation); else HTTP on 127.0.0.1:8000.

App:
  MODULE[:EXPORT]           the app to serve (or "app" in the config file)
  --mount PREFIX            the app's mount point: SCRIPT_NAME = PREFIX, PATH_INFO = the rest of the path
                            (FastCGI, SCGI, uwsgi: rebuilt from REQUEST_URI whatever split the web server
                            made); "/" for an app at the root of a site
  -c, --config FILE         read options from FILE: JSON, or a .js/.mjs/.ts module whose default export is
                            the same object; keys are the long flag names plus "app"; flags given here win

CGI programs (cgiBin: what fcgiwrap does for nginx, what ScriptAlias does for Apache):
  --cgi-bin DIR             serve the executables in DIR: /s.cgi/a?x runs DIR/s.cgi with PATH_INFO=/a; a
                            folder URL runs its index.cgi; the mount defaults to "/" here (--mount /cgi-bin
                            puts DIR there); -t, --timeout S is the time a script has to answer (default 30:
                            then 504 and its process group killed; 0 = no limit)
  --cgi-interpreter .EXT=PATH
                            run scripts ending in .EXT as "PATH SCRIPT" (they need not be executable), and
                            try index.EXT for folders too; repeatable (.php=/usr/bin/php-cgi)
  --cgi-env NAME=VALUE      add a variable to every script's environment (GIT_PROJECT_ROOT=/srv/git);
                            repeatable; the rest of this environment reaches scripts only through an
                            allow-list (PATH, LANG, TZ...)
  --cgi-read-ahead          count a request body without a length (chunked) before the script starts, so
                            it gets CONTENT_LENGTH; over 1 MiB: 411 (default: streamed to the script, to EOF
                            on its stdin, without CONTENT_LENGTH, as Apache does)

Processes:
  -w, --workers N           worker processes under a master; "auto" = one per core; 0 = no master, the
                            app runs in this process (default: 1; started on fd 0 by a web server: 0)
  --max-requests N          recycle a worker after N requests (default 0 = never)
  --max-requests-jitter J   add a random 0..J to --max-requests per worker, so workers recycle apart
  --max-rss MIB             recycle a worker, after its in-flight requests, once its RSS passes MIB
  -t, --timeout S           a request busy for S seconds: its stack is logged, it gets 504 if nothing was
                            sent yet, and its worker is replaced (default 0 = no limit)
  --graceful-timeout S      how long stopping workers wait for in-flight requests (default ${DEFAULT_GRACEFUL_TIMEOUT_SECONDS})
  --reload                  development: run the server in a child process and restart it when a file
                            under the app's directory changes (not node_modules, .git, dist)

Limits:
  --max-body SIZE           refuse request bodies over SIZE bytes (suffix k, m or g: 512k, 10m) with 413:
                            a larger declared length before the app runs; a body that grows past SIZE (chunked,
                            or any body over FastCGI) when the app reads past SIZE (default: no limit)
  --max-connections N       connections open at once; more are closed at once (default ${DEFAULT_MAX_CONNECTIONS})
  --header-timeout S        a connection must send a whole request head within S seconds of connecting, else
                            it is closed (408 if it began one) (default ${DEFAULT_HEADER_TIMEOUT_MS / 1000})
  --body-timeout S          a request body that stops arriving for S seconds fails the app's read (408) and
                            its connection closes; an app reading slowly does not count (default ${DEFAULT_BODY_TIMEOUT_MS / 1000})
  --idle-timeout S          FastCGI and HTTP: a kept-alive connection with no request for S seconds is closed
                            (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000}; HTTP: 5, Node's keepAliveTimeout)
  A timeout of 0 is off. Each refusal at a limit is logged, at most a line per limit every 10 s, with the
  flag that changes it.

Logging:
  --access-log FILE         one Combined Log Format line per request, appended to FILE ("-" = stderr)
  --access-log-format F     "combined" (default) or "json": one JSON object a line (time, remote, method,
                            uri, status, bytes, duration_ms, pid...)
  --slow-log S              log a request still running after S seconds, once, and let it go on; with the
                            JavaScript stack when it holds the event loop (default 0 = off)
  --error-log FILE          the servers' log (refused requests, the app's tsgi.errors and errors), appended
                            to FILE, as well as FastCGI's STDERR records (default "-" = stderr)
  Startup lines go to stdout, errors and the app's tsgi.errors to stderr (or --error-log).

Health checks, metrics, proxies:
  --ping-path PATH          answer 200 "pong" at PATH, before the app (with --mount, PATH includes it)
  --status-path PATH        the status page at PATH, before the app: the process tree, requests, refusals,
                            slow requests, requests in flight; ?json, ?openmetrics (Prometheus)
  --status-allow LIST       who may read the status page, by REMOTE_ADDR: addresses and CIDR networks,
                            "*" for all (default ${DEFAULT_STATUS_ALLOW}); others get 403
  --forwarded-allow-ips LIST
                            peers whose X-Forwarded-For/-Proto/-Host and Forwarded fields set the client's
                            address, scheme and host (default ${DEFAULT_FORWARDED_ALLOW_IPS}; "*" any; "" none)

Unix sockets (for unix:PATH addresses):
  --socket-mode MODE        the socket file's mode, octal (660: the web server's group may connect)
  --socket-owner USER       its owner (name or uid)
  --socket-group GROUP      its group (name or gid)

  -h, --help                this help

Signals:
  SIGINT, SIGTERM           stop accepting, let in-flight requests finish (up to --graceful-timeout), exit 0;
                            a second one exits at once
  SIGHUP                    (with workers) reload the app: new workers start, old ones stop once the new
                            ones accept, no request is lost
  SIGTTIN, SIGTTOU          (with workers) one worker more, one fewer
  Under CGI the process serves one request; SIGTERM from the web server aborts it.

Config file example (tsgi.json; relative paths in it are relative to the file):
  { "app": "app.ts", "fastcgi": "unix:/run/app.sock", "socket-mode": "660", "workers": 4,
    "max-requests": 1000, "max-requests-jitter": 100, "max-body": "10m", "access-log": "logs/access.log" }
  { "cgi-bin": "cgi-bin", "fastcgi": "127.0.0.1:9000", "mount": "/cgi-bin",
    "cgi-interpreter": { ".php": "/usr/bin/php-cgi" }, "cgi-env": { "GIT_PROJECT_ROOT": "/srv/git" } }
  (repeatable flags take a list of strings, or an object of NAME: VALUE)

Examples:
  tsgi serve app.ts                                    HTTP on http://127.0.0.1:8000/
  tsgi serve app.ts:api --http 0.0.0.0:8080 -w auto    a named export, every interface, one worker per core
  tsgi serve app.ts --fastcgi 127.0.0.1:9000 --mount /app
  tsgi serve app.ts --fastcgi unix:/run/app.sock --socket-mode 660 --socket-group www-data
  tsgi serve app.ts --reload --access-log -            development
  tsgi serve -c tsgi.json --workers 2                  options from a file, one overridden
  tsgi serve --cgi-bin cgi-bin --mount /cgi-bin        http://127.0.0.1:8000/cgi-bin/hello.cgi
  tsgi serve --cgi-bin /srv/cgi --fastcgi unix:/run/cgi.sock -w 4 --cgi-interpreter .php=/usr/bin/php-cgi
`;

