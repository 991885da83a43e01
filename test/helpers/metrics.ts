// Talks to a running sni-mux's admin listener: plain HTTP requests and a parser for the Prometheus text format.
import http from 'node:http';
import net from 'node:net';
import type { MuxProcess } from './mux.js';

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One request to 127.0.0.1:port, without keep-alive so no socket outlives the test; from
 * `localAddress` when given (127.0.0.x are all loopback: distinct peers for [admin] allow).
 */
export function request(
  port: number,
  path: string,
  method = 'GET',
  localAddress = '127.0.0.1',
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, method, agent: false, localAddress };
    const req = http.request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes to 127.0.0.1:port and returns everything it answers before closing. */
export function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
    });
    s.on('error', () => {});
    s.on('close', () => resolve(out));
    s.end(bytes);
  });
}

/** The admin port a mux logged in its start line. */
export function adminPort(mux: MuxProcess): number {
  const started = mux.logs.find((l) => l.msg === 'sni-mux started');
  const admin = started?.admin as { port: number } | undefined;
  if (admin === undefined) throw new Error('the start line has no admin address');
  return admin.port;
}

/** One sample of the exposition: metric name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (0.0.4) into samples; comments are skipped. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Scrapes /metrics and returns its samples. */
export async function scrape(port: number): Promise<Sample[]> {
  const reply = await request(port, '/metrics');
  if (reply.status !== 200) throw new Error(`/metrics answered ${reply.status}`);
  return parseExposition(reply.body);
}

/** The value of the one sample with this name and (at least) these labels; undefined if none. */
export function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** Identity of every series whose name starts with prefix, for comparing label sets. */
export function seriesKeys(samples: Sample[], prefix = 'snimux_'): string[] {
  return samples
    .filter((s) => s.name.startsWith(prefix))
    .map((s) => `${s.name}${JSON.stringify(s.labels)}`)
    .sort();
}
