// Library entry: the pieces a program embedding sni-mux needs.
export { formatProblem, loadConfig, parseConfig } from './config/load.js';
export type * from './config/types.js';
export { parseClientHello } from './detect/clienthello.js';
export { detect } from './detect/detect.js';
export type * from './detect/types.js';
export { createLogger } from './log.js';
export { Mux, type MuxObserver, type MuxOptions } from './mux.js';
export { Router } from './route/router.js';
export { VERSION } from './version.js';
