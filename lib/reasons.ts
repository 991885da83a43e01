// Fixed vocabularies for why a connection was refused or ended: used in logs and as metric labels.

/** Why a connection was closed before being relayed. Every accepted connection ends routed or rejected. */
export const REJECT_REASONS = [
  'no_route', // detected, but no route matches
  'detect_timeout', // bytes seen but not enough to decide within timeouts.detect
  'no_data', // nothing sent within timeouts.detect and no on_timeout route
  'bad_hello', // a TLS ClientHello that is malformed
  'malformed', // another protocol recognised but malformed
  'peek_limit', // limits.max_peek_bytes buffered and still undecided
  'client_closed', // the client closed or reset before a decision
  'backend_unavailable', // every backend of the route failed to connect
  'bad_backend', // a backend template expanded to something that is not a DNS name
  'limit', // limits.max_connections_per_source, or the queue behind max_connections full
  'fd_limit', // the mux itself was out of file descriptors (EMFILE, ENFILE) for the backend connect
  'proxy_header', // a PROXY header missing, malformed or from an untrusted peer
  'shutdown', // the mux was stopping
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Why a relayed connection ended. */
export const END_REASONS = [
  'client_closed', // both sides closed, the client first
  'backend_closed', // both sides closed, the backend first
  'idle_timeout',
  'client_error',
  'backend_error',
  'shutdown', // drain timeout passed, closed by the mux
] as const;
export type EndReason = (typeof END_REASONS)[number];
