/**
 * The two ways a `tsgi serve` master holds its listening socket (src/node-private/net.ts, cli/cluster/listen-socket.ts):
 * the private handle (the default: workers inherit a descriptor the master never accepts on) and the public
 * fallback (TSGI_NODE_PRIVATE=0: a pauseOnConnect net.Server sent to the workers, no FastCGI handover). Master
 * scenarios run on both: `describe.each(LISTEN_PATHS)('... ($name)', ({ env }) => ...)`.
 */
export const LISTEN_PATHS: ReadonlyArray<{ name: string; env: Record<string, string> }> = [
  { name: 'private handle', env: {} },
  { name: 'public fallback, TSGI_NODE_PRIVATE=0', env: { TSGI_NODE_PRIVATE: '0' } },
];
