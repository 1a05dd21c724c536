import { ProtocolStatus, Role } from '../../protocol/fastcgi/constants.js';
import type { ConnectionServer } from './connection-server.js';

/**
 * Whether a connection takes a new request (BEGIN_REQUEST, §5.1), and if not, the END_REQUEST protocolStatus
 * that refuses it: CANT_MPX_CONN for a second request on a connection when multiplexing is off (conformance
 * C9), UNKNOWN_ROLE for a role other than the three of §6, OVERLOADED at maxRequestsPerConnection,
 * maxRequests or maxBufferedBytes (C12: each logged, rate-limited). Null: take it. `inProgress` is the count of
 * requests in progress on the connection.
 */
export function refusalOf(server: ConnectionServer, role: number, inProgress: number): number | null {
  const options = server.options;
  if (!options.multiplex && inProgress > 0) return ProtocolStatus.CANT_MPX_CONN;
  if (role !== Role.RESPONDER && role !== Role.AUTHORIZER && role !== Role.FILTER) return ProtocolStatus.UNKNOWN_ROLE;
  if (inProgress >= options.maxRequestsPerConnection) {
    server.limitLog.hit(
      'maxRequestsPerConnection',
      `a connection began more than ${options.maxRequestsPerConnection} requests at once (answered OVERLOADED)`,
      'the maxRequestsPerConnection option',
    );
    return ProtocolStatus.OVERLOADED;
  }
  if (server.activeRequests >= options.maxRequests) {
    server.limitLog.hit('maxRequests', `${options.maxRequests} requests in progress (answered OVERLOADED)`, 'the maxRequests option');
    return ProtocolStatus.OVERLOADED;
  }
  // Over the buffer budget: first the worst offender is cut (shed); refused only if that did not make room.
  if (server.budget.used >= options.maxBufferedBytes && (server.shed(), server.budget.used >= options.maxBufferedBytes)) {
    server.limitLog.hit(
      'maxBufferedBytes',
      `the server buffers ${server.budget.used} bytes of PARAMS and unread input (answered OVERLOADED)`,
      'the maxBufferedBytes option',
    );
    return ProtocolStatus.OVERLOADED;
  }
  return null;
}
