
export const MAIN_USAGE = `usage: tsgi <command> [arguments] [options]

Runs apps written to the tsgi interface, app(environ, startResponse), under every gateway.

Commands:
  serve [MODULE[:EXPORT]]     serve an app over HTTP, FastCGI, SCGI, uwsgi or CGI (default: HTTP on
                              127.0.0.1:8000), with worker processes, recycling, timeouts and reloads
  build ENTRY -o FILE         bundle an app into one executable file to drop into a cgi-bin/ folder
  cgi SCRIPT [METHOD] [URL]   run any CGI executable once through pipes and print its response (curl -i style)
  ping --fastcgi ADDR         health check: one request in the backend's protocol (also --scgi, --uwsgi,
                              --http); exit 0 on a 2xx answer in time, 1 otherwise
  help [COMMAND]              this help, or a command's

Options:
  -h, --help                  this help
  -v, --version               print the version

Examples:
  tsgi serve app.ts
  tsgi serve app.ts --fastcgi unix:/run/app.sock --workers auto
  tsgi build cgi-bin/app.ts -o public_html/app.cgi
  tsgi cgi ./app.cgi POST /form --data 'a=1'
  tsgi ping --fastcgi 127.0.0.1:9000

Run "tsgi help COMMAND" (or "tsgi COMMAND --help") for a command's options.
`;

/** Where main writes. Defaults to the process's own streams. */
export interface MainIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const VERBS = ['serve', 'build', 'cgi', 'ping'] as const;
type Verb = (typeof VERBS)[number];

/** Runs the `tsgi` command line. Resolves with the exit status (serve resolves only on failure or --help). */
export async function main(argv: string[], io: MainIo = process): Promise<number> {
  const [verb, ...args] = argv;
  switch (verb) {
    case 'serve':
      return (await import('./serve-command.js')).runServeCommand(args, io);
    case 'build':
      return (await import('./build-command.js')).runBuildCommand(args, io);
    case 'cgi':
      return (await import('./cgi-command.js')).runCgiCommand(args);
    case 'ping':
      return (await import('./ping-command.js')).runPingCommand(args, io);
    case '--version':
    case '-v':
    case 'version':
      // Loaded only here: it reads package.json with node:fs, which a master need not load (see serve-plan.ts).
      io.stdout.write(`tsgi ${(await import('../version.js')).readVersion()}\n`);
      return 0;
    case 'help': {
      const [topic, ...extra] = args;
      if (topic === undefined) {
        io.stdout.write(MAIN_USAGE);
        return 0;
      }
      if (extra.length > 0 || !(VERBS as readonly string[]).includes(topic)) {
        io.stderr.write(`tsgi help: no such command "${[topic, ...extra].join(' ')}" (commands: ${VERBS.join(', ')})\n`);
        return 2;
      }
      io.stdout.write(await usageOf(topic as Verb));
      return 0;
    }
    case '--help':
    case '-h':
      io.stdout.write(MAIN_USAGE);
      return 0;
    case undefined:
      io.stderr.write(MAIN_USAGE);
      return 2;
    default:
      io.stderr.write(`tsgi: unknown command "${verb}"\n\n${MAIN_USAGE}`);
      return 2;
  }
}

async function usageOf(verb: Verb): Promise<string> {
  if (verb === 'serve') return (await import('./serve-command.js')).SERVE_USAGE;
  if (verb === 'build') return (await import('./build-command.js')).BUILD_USAGE;
  if (verb === 'ping') return (await import('./ping-command.js')).PING_USAGE;
  return (await import('./cgi-command.js')).CGI_USAGE;
}
