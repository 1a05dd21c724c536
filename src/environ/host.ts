/**
 * The Host rules every place that reads a Host shares (the HTTP server's check of the Host header, the
 * translator's SERVER_NAME from HTTP_HOST, the forwarding fields' host): RFC 9110 §7.2 Host = uri-host
 * [":" port], with uri-host an IP-literal or a reg-name (no userinfo, no path).
 */
export const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?$/;

/** "example.com:8080" -> "example.com", "[::1]:80" -> "[::1]"; undefined for an empty or missing host. */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1) || undefined;
  return host.split(':', 1)[0] || undefined;
}

/** The port of a Host value ("8080" of "example.com:8080"), or undefined when it has none (or an empty one). */
export function portOfHost(host: string): string | undefined {
  const afterName = host.startsWith('[') ? host.slice(host.indexOf(']') + 1) : host.slice(host.split(':', 1)[0]?.length ?? 0);
  return afterName.startsWith(':') && afterName.length > 1 ? afterName.slice(1) : undefined;
}
