/**
 * The throughput rows of bench/run.mjs: each a backend process tree (or none, for nginx's own answer) and the
 * nginx location that reaches it, or (section 'direct') an HTTP server wrk reaches with no nginx in between.
 * Every backend answers the same two responses (bench/apps/payload.mjs): "Hello, World!" at / and 64 KiB at
 * /64k, text/plain with a Content-Length.
 *
 * A row: { id, name, section ('nginx' or 'direct'), note (for RESULTS.md), tools (Debian-packaged tools it
 * needs), modules (npm packages it needs), keepalive (upstream keepalive), node (a Node backend: profilable),
 * tsgi (runs dist/: needs the build), command(ctx, port, nodeArgs) -> [command, args, env?], location(ctx,
 * row) or locations(ctx, row) (nginx config text; none for direct rows) }.
 */
import { join, relative } from 'node:path';
import { fastcgiLocation, gatewayLocation, proxyLocation, UPSTREAM_KEEPALIVE } from './nginx.mjs';
import { HELLO_BODY } from '../apps/payload.mjs';

/**
 * `node bin/tsgi.js serve bench/apps/APP FLAG 127.0.0.1:PORT`, the way users start it (no --workers: the
 * default). The gateway protocols get `--mount /` (an app at the root of the site: SCRIPT_NAME "" and
 * PATH_INFO the path, whatever split nginx's stock params make), as conf/nginx-fastcgi.conf advises.
 */
function tsgiServe(ctx, appFile, flag, port, nodeArgs = []) {
  const mount = flag === '--http' ? [] : ['--mount', '/'];
  return [process.execPath, [...nodeArgs, ctx.tsgiBin, 'serve', relative(ctx.root, join(ctx.apps, appFile)), flag, `127.0.0.1:${port}`, ...mount]];
}

const TSGI_PROCESSES = 'no --workers: whatever process tree `tsgi serve` starts by default, measured whole';

export const ROWS = [
  {
    id: 'tsgi-fastcgi',
    name: 'tsgi FastCGI',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'hello.ts', '--fastcgi', port, nodeArgs),
    location: () => fastcgiLocation('tsgi_fastcgi'),
    note: `\`tsgi serve bench/apps/hello.ts --fastcgi 127.0.0.1:P --mount /\` (${TSGI_PROCESSES}); fastcgi_pass, fastcgi_keep_conn on, upstream keepalive ${UPSTREAM_KEEPALIVE}.`,
  },
  {
    id: 'tsgi-scgi',
    name: 'tsgi SCGI',
    keepalive: false,
    node: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'hello.ts', '--scgi', port, nodeArgs),
    location: () => gatewayLocation('scgi', 'tsgi_scgi'),
    note: `\`tsgi serve bench/apps/hello.ts --scgi 127.0.0.1:P --mount /\` (${TSGI_PROCESSES}); scgi_pass with Debian's scgi_params. SCGI has no connection reuse: one TCP connection per request.`,
  },
  {
    id: 'tsgi-uwsgi',
    name: 'tsgi uwsgi',
    keepalive: false,
    node: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'hello.ts', '--uwsgi', port, nodeArgs),
    location: () => gatewayLocation('uwsgi', 'tsgi_uwsgi'),
    note: `\`tsgi serve bench/apps/hello.ts --uwsgi 127.0.0.1:P --mount /\` (${TSGI_PROCESSES}); uwsgi_pass with Debian's uwsgi_params. nginx's uwsgi module opens one TCP connection per request.`,
  },
  {
    id: 'tsgi-http',
    name: 'tsgi HTTP via proxy',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'hello.ts', '--http', port, nodeArgs),
    location: () => proxyLocation('tsgi_http'),
    note: `\`tsgi serve bench/apps/hello.ts --http 127.0.0.1:P\` (${TSGI_PROCESSES}); proxy_pass, HTTP/1.1, \`Connection ""\`, upstream keepalive ${UPSTREAM_KEEPALIVE}.`,
  },
  {
    id: 'node-http',
    name: 'Node http via proxy',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs = []) => [process.execPath, [...nodeArgs, join(ctx.apps, 'node-http-hello.mjs'), String(port)]],
    location: () => proxyLocation('node_http'),
    note: `bench/apps/node-http-hello.mjs: plain \`node:http\` \`createServer\`, one process; proxy_pass as for tsgi HTTP. The baseline of the ratio column.`,
  },
  {
    id: 'express-fastcgi',
    name: 'Express via tsgi FastCGI',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    modules: ['express'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'express-hello.ts', '--fastcgi', port, nodeArgs),
    location: () => fastcgiLocation('express_fastcgi'),
    note: `Express 5 (bench/apps/express-app.mjs) wrapped with \`fromNodeHandler\` (bench/apps/express-hello.ts), \`tsgi serve bench/apps/express-hello.ts --fastcgi 127.0.0.1:P --mount /\` (${TSGI_PROCESSES}); as tsgi FastCGI.`,
  },
  {
    id: 'express-fastcgi-floor',
    name: 'Express via a minimal bridge, FastCGI (floor)',
    keepalive: true,
    node: true,
    tsgi: true,
    tools: ['nginx', 'wrk'],
    modules: ['express'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'express-floor.mjs', '--fastcgi', port, nodeArgs),
    location: () => fastcgiLocation('express_fastcgi_floor'),
    note: `The same Express app behind bench/apps/express-floor.mjs (the minimal bridge of the direct section's floor row; its header lists what it leaves out), \`tsgi serve bench/apps/express-floor.mjs --fastcgi 127.0.0.1:P --mount /\` (${TSGI_PROCESSES}); as tsgi FastCGI. The floor of "Express via tsgi FastCGI".`,
  },
  {
    id: 'express-http',
    name: 'Express on node:http via proxy',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    modules: ['express'],
    command: (ctx, port, nodeArgs = []) => [process.execPath, [...nodeArgs, join(ctx.apps, 'express-http-hello.mjs'), String(port)]],
    location: () => proxyLocation('express_http'),
    note: 'The same Express app on its own `app.listen` (node:http), one process; proxy_pass as for Node http.',
  },
  {
    id: 'node-fastcgi',
    name: 'node-fastcgi',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    modules: ['node-fastcgi'],
    command: (ctx, port, nodeArgs = []) => [process.execPath, [...nodeArgs, join(ctx.apps, 'node-fastcgi-hello.cjs'), String(port)]],
    location: () => fastcgiLocation('node_fastcgi'),
    note: 'node-fastcgi (the npm devDependency), its README\'s server on TCP, one process; as tsgi FastCGI. It ignores FCGI_KEEP_CONN and closes every connection after one request (nginx logs the kept connections it finds closed and retries them; clients never see it).',
  },
  {
    id: 'php-fpm',
    name: 'PHP-FPM',
    keepalive: true,
    tools: ['nginx', 'wrk', 'php-fpm'],
    command: (ctx) => [ctx.phpFpm, ['--nodaemonize', '--fpm-config', join(ctx.dir, 'php-fpm.conf'), ...(process.getuid?.() === 0 ? ['--allow-to-run-as-root'] : [])]],
    location: (ctx) => fastcgiLocation('php_fpm', `      fastcgi_param SCRIPT_FILENAME ${ctx.dir}/hello.php;\n`),
    note: 'Debian\'s php-fpm, its own pool: `pm = static`, `pm.max_children` = the wrk connection count (a child serves one kept-alive nginx connection at a time, so fewer children would leave connections queued), `pm.max_requests = 0`, opcache as Debian ships it (on); the master process plus the children; bench/apps/hello.php; fastcgi_keep_conn on.',
  },
  {
    id: 'uwsgi-python',
    name: 'uWSGI (Python WSGI)',
    keepalive: false,
    tools: ['nginx', 'wrk', 'uwsgi', 'uwsgi-python3'],
    command: (ctx, port) => [
      ctx.uwsgi,
      ['--plugin', 'python3', '--uwsgi-socket', `127.0.0.1:${port}`, '--wsgi-file', join(ctx.apps, 'hello_wsgi.py'),
        '--processes', '1', '--disable-logging', '--die-on-term', '--need-app'],
    ],
    location: () => gatewayLocation('uwsgi', 'uwsgi_python'),
    note: 'Debian\'s uwsgi-core + uwsgi-plugin-python3: `uwsgi --plugin python3 --uwsgi-socket 127.0.0.1:P --wsgi-file bench/apps/hello_wsgi.py --processes 1 --disable-logging`: 1 process, no master, no threads; uwsgi_pass (one connection per request).',
  },
  {
    id: 'go-fcgi',
    name: 'Go net/http/fcgi',
    keepalive: true,
    tools: ['nginx', 'wrk', 'go'],
    command: (ctx, port) => [ctx.goBinary, [`127.0.0.1:${port}`]],
    location: () => fastcgiLocation('go_fcgi'),
    note: 'bench/apps/go-fcgi/main.go, standard library only, built by the bench with Debian\'s golang-go (CGO_ENABLED=0); one process, GOMAXPROCS = the core count (Go\'s default); fastcgi_keep_conn on.',
  },
  {
    id: 'nginx',
    name: 'nginx alone',
    keepalive: false,
    tools: ['nginx', 'wrk'],
    command: null,
    locations: (ctx) =>
      `    location = / {\n      return 200 "${HELLO_BODY.toString()}";\n    }\n    location = /64k {\n      root ${ctx.dir}/static;\n    }\n`,
    note: 'No backend: `return 200 "Hello, World!"` for hello world, the 64 KiB body as a static file for 64 KiB. The ceiling of this setup.',
  },
];

/** The bench/apps script `file` with PORT, one Node process (nodeArgs before the script: --cpu-prof). */
const nodeApp = (file) => (ctx, port, nodeArgs = []) => [process.execPath, [...nodeArgs, join(ctx.apps, file), String(port)]];

/** Rows added for issue 11's goals: the FastCGI, SCGI and uwsgi floors, HTTP without keepalive, and HTTP with no nginx at all. */
ROWS.splice(
  ROWS.findIndex((row) => row.id === 'node-fastcgi'),
  0,
  {
    id: 'fcgi-minimal',
    name: 'minimal Node FastCGI responder',
    keepalive: true,
    node: true,
    tools: ['nginx', 'wrk'],
    command: nodeApp('minimal-fastcgi.mjs'),
    location: () => fastcgiLocation('fcgi_minimal'),
    note: 'bench/apps/minimal-fastcgi.mjs: a FastCGI responder on node:net written for the bench (records decoded whatever their fragmentation, every param decoded into a fresh object, one write per response, FCGI_KEEP_CONN honoured; no multiplexing, no STDERR, no abort handling, no limits: see its header), one process; as tsgi FastCGI.',
  },
  ...['scgi', 'uwsgi'].map((protocol) => ({
    id: `${protocol}-minimal`,
    name: `minimal Node ${protocol === 'scgi' ? 'SCGI' : 'uwsgi'} responder`,
    keepalive: false,
    node: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs = []) => [process.execPath, [...nodeArgs, join(ctx.apps, 'minimal-scgi-uwsgi.mjs'), protocol, String(port)]],
    location: () => gatewayLocation(protocol, `${protocol}_minimal`),
    note: `bench/apps/minimal-scgi-uwsgi.mjs ${protocol}: a${protocol === 'scgi' ? 'n SCGI' : ' uwsgi'} responder on node:net written for the bench (the head decoded whatever its fragmentation, every variable into a fresh object, the body read and dropped, head and body in one write with the FIN; no checks, no limits, no timeouts, no lingering close: see its header), one process; as tsgi ${protocol === 'scgi' ? 'SCGI' : 'uwsgi'}. The floor of tsgi ${protocol === 'scgi' ? 'SCGI' : 'uwsgi'}.`,
  })),
);
ROWS.splice(
  ROWS.findIndex((row) => row.id === 'express-fastcgi'),
  0,
  {
    id: 'node-http-close',
    name: 'Node http via proxy, no keepalive',
    keepalive: false,
    node: true,
    tools: ['nginx', 'wrk'],
    command: nodeApp('node-http-hello.mjs'),
    location: () => proxyLocation('node_http_close', { keepalive: false }),
    note: 'The same plain `node:http` server as "Node http via proxy", but `proxy_pass` without upstream keepalive (nginx\'s default HTTP/1.0 and `Connection: close`): a TCP connection per request, as SCGI and uwsgi have. The baseline of tsgi SCGI and uwsgi.',
  },
);

const TSGI_SERVE_HTTP = 'no --workers: a master and one worker, measured whole (the "serving" columns: the worker)';

ROWS.push(
  {
    id: 'direct-node',
    section: 'direct',
    name: 'raw node:http handler',
    node: true,
    tools: ['wrk'],
    command: nodeApp('node-http-hello.mjs'),
    note: 'bench/apps/node-http-hello.mjs: `createServer((req, res) => { res.writeHead(...); res.end(body) })`, one process. The anchor of the direct section (1.00x).',
  },
  {
    id: 'direct-hono',
    section: 'direct',
    name: 'Hono 4 on @hono/node-server',
    node: true,
    tools: ['wrk'],
    modules: ['hono', '@hono/node-server'],
    command: nodeApp('hono-hello.mjs'),
    note: 'bench/apps/hono-hello.mjs: a Hono app (`c.body(bytes, 200, headers)`) under `serve()` of @hono/node-server, one process.',
  },
  {
    id: 'direct-fastify',
    section: 'direct',
    name: 'Fastify 5',
    node: true,
    tools: ['wrk'],
    modules: ['fastify'],
    command: nodeApp('fastify-hello.mjs'),
    note: 'bench/apps/fastify-hello.mjs: Fastify 5, logger off, `reply.type(...).send(buffer)`, one process.',
  },
  {
    id: 'direct-tsgi',
    section: 'direct',
    name: 'tsgi serve --http',
    node: true,
    tsgi: true,
    tools: ['wrk'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'hello.ts', '--http', port, nodeArgs),
    note: `\`tsgi serve bench/apps/hello.ts --http 127.0.0.1:P\` (${TSGI_SERVE_HTTP}; the TypeScript app loads through tsx in the worker).`,
  },
  {
    id: 'direct-inprocess',
    section: 'direct',
    name: 'createHttpServer(app) in-process',
    node: true,
    tsgi: true,
    tools: ['wrk'],
    command: nodeApp('tsgi-http-inprocess.mjs'),
    note: 'bench/apps/tsgi-http-inprocess.mjs: `createHttpServer(app).listen(P)` from code, one process, the JavaScript twin of hello.ts (bench/apps/hello-app.mjs).',
  },
  {
    id: 'direct-express',
    section: 'direct',
    name: 'Express on node:http directly',
    node: true,
    tools: ['wrk'],
    modules: ['express'],
    command: nodeApp('express-http-hello.mjs'),
    note: 'bench/apps/express-http-hello.mjs: the Express 5 app of express-app.mjs on `app.listen`, one process.',
  },
  {
    id: 'direct-express-tsgi',
    section: 'direct',
    name: 'Express via tsgi serve --http',
    node: true,
    tsgi: true,
    tools: ['wrk'],
    modules: ['express'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'express-hello.ts', '--http', port, nodeArgs),
    note: `The same Express app wrapped with \`fromNodeHandler\` (bench/apps/express-hello.ts), \`tsgi serve bench/apps/express-hello.ts --http 127.0.0.1:P\` (${TSGI_SERVE_HTTP}).`,
  },
  {
    id: 'direct-floor',
    section: 'direct',
    name: 'minimal environ gateway (floor)',
    node: true,
    tools: ['wrk'],
    command: nodeApp('minimal-http-gateway.mjs'),
    note: 'bench/apps/minimal-http-gateway.mjs: about the least any server of the tsgi interface on node:http does per request (an environ with every required key, a lazy tsgi.signal, an input object, startResponse, writeHead and end; its header lists what it leaves out), serving hello-app.mjs in one process. The floor of the direct tsgi rows.',
  },
  {
    id: 'direct-express-floor',
    section: 'direct',
    name: 'Express via a minimal bridge (floor)',
    node: true,
    tsgi: true,
    tools: ['wrk'],
    modules: ['express'],
    command: (ctx, port, nodeArgs) => tsgiServe(ctx, 'express-floor.mjs', '--http', port, nodeArgs),
    note: `The same Express app behind bench/apps/express-floor.mjs, about the least a bridge from a (req, res) handler to a tsgi app does (one Node request/response pair per request, status and headers read from the response; its header lists what it leaves out), \`tsgi serve bench/apps/express-floor.mjs --http 127.0.0.1:P\` (${TSGI_SERVE_HTTP}). The floor of "Express via tsgi serve --http".`,
  },
);
for (const row of ROWS) {
  row.section ??= 'nginx';
  row.tsgi ??= row.id.startsWith('tsgi-') || row.id === 'express-fastcgi';
}

export const ROW_IDS = ROWS.map((row) => row.id);

/** The PHP-FPM configuration: its own pool on TCP, everything in the temp dir. */
export function phpFpmConfig(dir, port, children) {
  const root = process.getuid?.() === 0;
  return `; Written by bench/run.mjs.
[global]
pid = ${dir}/php-fpm.pid
error_log = ${dir}/php-fpm.log
daemonize = no

[bench]
${root ? 'user = root\ngroup = root\n' : ''}listen = 127.0.0.1:${port}
listen.backlog = 4096
pm = static
pm.max_children = ${children}
pm.max_requests = 0
catch_workers_output = yes
`;
}
