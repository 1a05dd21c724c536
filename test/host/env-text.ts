/**
 * Test helper: the `NAME=value` lines a CGI script printed with `env` (or `printenv`), as an object. Lines
 * without "=" (or starting with it) are skipped; a value keeps any "=" after the first.
 */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) env[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return env;
}
