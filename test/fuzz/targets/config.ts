// Fuzz target: the whole config loader (TOML parse, validation, shadow warnings) on arbitrary text.
import { readFileSync } from 'node:fs';
import { formatProblem, parseConfig } from '../../../lib/config/load.js';
import { bytes, type FuzzTarget, fail } from '../target.js';

const decoder = new TextDecoder();

export const config: FuzzTarget = {
  name: 'config',
  about: 'parseConfig: never throws; a config or errors, each with a message and a line inside the file',
  maxLen: 8192,
  seeds: () => [
    new Uint8Array(readFileSync(new URL('../../../examples/mux.toml', import.meta.url))),
    bytes('listen = "127.0.0.1:443"\n[[route]]\nname = "a"\nsni = "*.a.example"\nbackend = "127.0.0.1:1"\n'),
    bytes(
      'listen = ["[::1]:0"]\n[timeouts]\ndetect = "1m30s"\n[limits]\nmax_peek_bytes = 512\n[[route]]\nsource = ["10.0.0.0/8"]\non_timeout = true\nbackends = ["h.example:22"]\n',
    ),
  ],
  dictionary: [
    bytes('[[route]]\n'),
    bytes('[timeouts]\n'),
    bytes('[limits]\n'),
    bytes('[accept_proxy]\n'),
    bytes('[admin]\n'),
    bytes(' = '),
    bytes('"'),
    bytes('"""'),
    bytes('['),
    bytes(']'),
    bytes('{'),
    bytes('\n'),
    bytes('sni = '),
    bytes('backend = '),
    bytes('source = '),
    bytes('protocol = '),
    bytes('"5s"'),
    bytes('"[::1]:443"'),
    bytes('"10.0.0.0/8"'),
    bytes('"*.'),
    bytes('proxy_protocol = "v2"'),
    bytes('balance = "roundrobin"'),
    bytes('backends = ["a:1", "b:2"]'),
    bytes('backend_down = '),
    bytes('idle = '),
  ],
  check(data) {
    const text = decoder.decode(data);
    const r = parseConfig(text, 'mux.toml');
    const lines = text.split('\n').length;
    if (r.kind === 'error' && r.errors.length === 0) fail('error result without errors');
    if (r.kind === 'ok') {
      const c = r.config;
      if (c.listen.length === 0 || c.routes.length === 0) fail('ok config without listen or routes');
      if (c.routes.some((x) => x.backends.length === 0)) fail('ok route without backends');
    }
    for (const p of r.kind === 'ok' ? r.warnings : r.errors) {
      if (p.message.length === 0) fail('problem without message');
      if (p.line !== undefined && (p.line < 1 || p.line > lines))
        fail(`problem at line ${p.line} of ${lines}`);
      formatProblem(p);
    }
  },
};
