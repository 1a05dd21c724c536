/** A TCP address to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT" (host defaults to 127.0.0.1). Throws an Error naming the
 * bad value.
 */
export function parseListenAddress(value: string, defaultHost = '127.0.0.1'): ListenAddress {
  const text = value.trim();
  let host = defaultHost;
  let portText = text;
  const v6 = /^\[([^\]]+)\]:([0-9]+)$/.exec(text);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2] as string;
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon) || defaultHost;
    portText = text.slice(colon + 1);
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!Number.isInteger(port) || port > 65535 || host.includes(':') !== (v6 !== null)) {
    throw new Error(`tsgi: bad address, expected HOST:PORT (${value})`);
  }
  return { host, port };
}
