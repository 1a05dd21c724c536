/** Where a CLI verb writes: its startup lines (stdout) and its log and errors (stderr). `process` is one. */
export type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
