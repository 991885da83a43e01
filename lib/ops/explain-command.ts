// `sni-mux explain`: builds a detection from flags or captured first bytes and prints where it would go.
import { readFile } from 'node:fs/promises';
import { formatProblem, loadConfig } from '../config/load.js';
import type { Endpoint } from '../config/types.js';
import { sameEndpoint } from '../config/validate.js';
import { detect } from '../detect/detect.js';
import { type Detection, PROTOCOLS, type Protocol } from '../detect/types.js';
import { parseEndpoint } from '../net/address.js';
import { ipBytes } from '../net/ip.js';
import { type ExplainInput, explain } from '../route/explain.js';
import type { Output } from './reload-command.js';

export interface ExplainOptions {
  config?: string | undefined;
  sni?: string | undefined;
  alpn?: string[] | undefined;
  protocol?: string | undefined;
  host?: string | undefined;
  source?: string | undefined;
  /** The listen address that accepted the connection: routes scoped to other listeners are skipped. */
  listener?: string | undefined;
  firstBytes?: string | undefined;
}

type Built =
  | { kind: 'ok'; detection: Detection | null; note?: string }
  | { kind: 'stop'; code: number; message: string };

/** Returns the exit code: 0 a route takes it, 1 none does (or it would be refused), 2 usage. */
export async function explainCommand(o: ExplainOptions, io: Output): Promise<number> {
  if (o.config === undefined) {
    io.err('sni-mux explain: --config FILE is required\n');
    return 2;
  }
  const built = o.firstBytes === undefined ? fromFlags(o) : await fromBytes(o);
  if (built.kind === 'stop') {
    io.err(`sni-mux explain: ${built.message}\n`);
    return built.code;
  }
  const input: ExplainInput = { detection: built.detection };
  if (o.source !== undefined) {
    const bytes = ipBytes(o.source);
    if (bytes === undefined) {
      io.err(
        `sni-mux explain: --source "${o.source}" is not an IP address, like 192.168.1.20 or 2001:db8::1\n`,
      );
      return 2;
    }
    input.source = { text: o.source, bytes };
  }
  const result = await loadConfig(o.config);
  if (result.kind === 'error') {
    for (const p of result.errors) io.err(`error: ${formatProblem(p)}\n`);
    io.err(`sni-mux explain: ${result.errors.length} error(s) in ${o.config}\n`);
    return 1;
  }
  if (o.listener !== undefined) {
    const listener = topListener(result.config.listen, o.listener);
    if (listener === undefined) {
      const known = result.config.listen.map((e) => e.text).join(', ');
      io.err(
        `sni-mux explain: --listener "${o.listener}" is not a listen address of ${o.config} (${known})\n`,
      );
      return 2;
    }
    input.listener = listener;
  }
  const e = explain(result.config, input);
  if (built.note !== undefined) io.out(`${built.note}\n`);
  io.out(`${e.lines.join('\n')}\n`);
  return e.route !== undefined && typeof e.backends !== 'string' ? 0 : 1;
}

/** The top-level listen text `text` names (as a route's listen key would), or undefined. */
function topListener(listen: readonly Endpoint[], text: string): string | undefined {
  const e = parseEndpoint(text, true);
  if (e.kind !== 'ok') return undefined;
  return listen.find((l) => sameEndpoint(l, e.endpoint))?.text;
}

/** --sni, --alpn, --host, --protocol: what detection would have found. */
function fromFlags(o: ExplainOptions): Built {
  const usage = (message: string): Built => ({ kind: 'stop', code: 2, message });
  if (o.sni === undefined && o.alpn === undefined && o.host === undefined && o.protocol === undefined) {
    return usage(
      'say what the client sent: --sni NAME [--alpn ID], --host NAME, --protocol NAME, or --first-bytes FILE',
    );
  }
  let protocol: Protocol | undefined;
  if (o.protocol !== undefined) {
    protocol = PROTOCOLS.find((p) => p === o.protocol);
    if (protocol === undefined)
      return usage(`--protocol "${o.protocol}" is not one of ${PROTOCOLS.join(', ')}`);
  }
  const tls = o.sni !== undefined || o.alpn !== undefined;
  if (tls && o.host !== undefined)
    return usage('--sni/--alpn describe TLS and --host plain HTTP; give one or the other');
  const implied: Protocol | undefined = tls ? 'tls' : o.host !== undefined ? 'http' : undefined;
  if (implied !== undefined && protocol !== undefined && protocol !== implied) {
    return usage(`--protocol ${protocol} contradicts ${tls ? '--sni/--alpn (tls)' : '--host (http)'}`);
  }
  const d: Detection = { protocol: implied ?? protocol! };
  // Normalised as the parsers do: lower case, one trailing dot dropped.
  const name = (s: string): string => s.toLowerCase().replace(/\.$/, '');
  if (o.sni !== undefined) d.sni = name(o.sni);
  if (o.alpn !== undefined) d.alpn = o.alpn.flatMap((a) => a.split(',')).filter((a) => a !== '');
  if (o.host !== undefined) d.host = name(o.host);
  return { kind: 'ok', detection: d };
}

/** --first-bytes FILE: the bytes a client sent, through the mux's own detect(). */
async function fromBytes(o: ExplainOptions): Promise<Built> {
  if (o.sni !== undefined || o.alpn !== undefined || o.host !== undefined || o.protocol !== undefined) {
    return {
      kind: 'stop',
      code: 2,
      message: '--first-bytes reads the detection from the bytes: drop --sni, --alpn, --host and --protocol',
    };
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(o.firstBytes!);
  } catch (err) {
    return { kind: 'stop', code: 2, message: `cannot read ${o.firstBytes}: ${(err as Error).message}` };
  }
  const r = detect(bytes);
  switch (r.kind) {
    case 'match':
      return { kind: 'ok', detection: r.detection, note: `${bytes.length} bytes from ${o.firstBytes}` };
    case 'no-match':
      return { kind: 'ok', detection: null, note: `${bytes.length} bytes from ${o.firstBytes}: ${r.reason}` };
    case 'need-more':
      return {
        kind: 'ok',
        detection: null,
        note: `${bytes.length} bytes from ${o.firstBytes} are not enough to decide: the mux waits for more (refused as detect_timeout if none come); if the client half-closes here, they go as unrecognised bytes:`,
      };
    case 'invalid':
      return {
        kind: 'stop',
        code: 1,
        message: `${o.firstBytes}: malformed ${r.protocol} (${r.reason}): the connection is refused as ${r.protocol === 'tls' ? 'bad_hello' : 'malformed'}`,
      };
  }
}
