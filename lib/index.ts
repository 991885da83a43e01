// Library entry: the pieces a program embedding sni-mux needs.
export { AdminServer } from './admin/server.js';
export { formatProblem, loadConfig, parseConfig } from './config/load.js';
export type * from './config/types.js';
export { parseClientHello } from './detect/clienthello.js';
export { detect } from './detect/detect.js';
export type * from './detect/types.js';
export { createLogger } from './log.js';
export { Metrics } from './metrics.js';
export { Mux, type MuxObserver, type MuxOptions } from './mux.js';
export { buildProxyHeader, type ProxyEndpoint, type ProxyHeaderInfo } from './proxy/header.js';
export { type ProxyHeader, type ProxyParseResult, parseProxyHeader } from './proxy/parse.js';
export { Router } from './route/router.js';
export { VERSION } from './version.js';
