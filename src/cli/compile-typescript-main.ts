/**
 * The helper process importTypeScript runs, so that a server process never loads esbuild:
 * `node compile-typescript-main.js ENTRY OUTFILE` compiles ENTRY into OUTFILE (compileTypeScript) and exits 0,
 * or writes the reason to stderr and exits 1 (2 for wrong arguments).
 */
import { compileTypeScript } from './compile-typescript.js';

const [entry, outfile, ...rest] = process.argv.slice(2);
if (entry === undefined || outfile === undefined || rest.length > 0) {
  process.stderr.write('usage: compile-typescript-main.js ENTRY OUTFILE (run by tsgi to load TypeScript apps)\n');
  process.exit(2);
}
compileTypeScript(entry, outfile).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
