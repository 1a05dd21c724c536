#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    process.stderr.write(`tsgi: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
