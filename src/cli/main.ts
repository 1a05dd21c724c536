import { readVersion } from '../version.js';

const USAGE = `usage: tsgi <command> [options]

Commands:
  serve MODULE[:EXPORT] [--http HOST:PORT]       serve an app over HTTP (default 127.0.0.1:8000)
  build ENTRY -o FILE                            bundle a CGI script into one executable file
  cgi SCRIPT [METHOD] [URL] [-H ...] [--data ...] run any CGI executable through pipes, print the response

Run "tsgi <command> --help" for a command's options.
`;


/** Runs the `tsgi` command line. Resolves with the exit status (serve resolves only on failure). */
export async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  switch (verb) {
    case 'serve':
      return (await import('./serve-command.js')).runServeCommand(args);
    case 'build':
      return (await import('./build-command.js')).runBuildCommand(args);
    case 'cgi':
      return (await import('./cgi-command.js')).runCgiCommand(args);
    case '--version':
    case '-v':
      process.stdout.write(`tsgi ${readVersion()}\n`);
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return verb === undefined ? 2 : 0;
    default:
      process.stderr.write(`tsgi: unknown command "${verb}"\n${USAGE}`);
      return 2;
  }
}
