// The fuzz targets by name: one file per parser that reads bytes a stranger (or a config file) supplies.
import type { FuzzTarget } from '../target.js';
import { address } from './address.js';
import { clienthello } from './clienthello.js';
import { config } from './config.js';
import { detectTarget } from './detect.js';
import { http } from './http.js';
import { proxy } from './proxy.js';
import { quic } from './quic.js';

export const TARGETS: readonly FuzzTarget[] = [clienthello, detectTarget, http, proxy, config, address, quic];
