// Smoke test for the benchmark tools: the C load generator and backend build and measure a real mux.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { muxConfig, route } from './helpers/config.js';
import { startMux } from './helpers/mux.js';

const run = promisify(execFile);
const LOADGEN_DIR = fileURLToPath(new URL('../benchmarks/loadgen/', import.meta.url));
const HELLO = fileURLToPath(new URL('./fixtures/clienthello/curl.bin', import.meta.url));
const SINK_HELLO = fileURLToPath(new URL('./fixtures/clienthello/openssl-sni-alpn.bin', import.meta.url));

async function hasGcc(): Promise<boolean> {
  try {
    await run('gcc', ['--version']);
    return true;
  } catch {
    return false;
  }
}

t.test(
  'the C load generator measures connections, round trips and bulk through a real mux',
  { skip: (await hasGcc()) ? false : 'gcc not installed: the benchmark load generator is C' },
  async (t) => {
    await run('make', ['-s', '-C', LOADGEN_DIR]);
    const backend = spawn(`${LOADGEN_DIR}backend`, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => {
      backend.kill('SIGKILL');
    });
    const ports = await new Promise<{ echo: number; sink: number }>((resolve) =>
      backend.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()))),
    );
    const mux = await startMux(
      t,
      muxConfig(
        route('sink', ports.sink, { sni: 'x.example.com' }),
        route('echo', ports.echo, { sni: 'a.example.com' }),
      ),
    );
    const loadgen = async (...args: (string | number)[]): Promise<Record<string, number | boolean>> => {
      const { stdout } = await run(`${LOADGEN_DIR}loadgen`, args.map(String), { timeout: 30_000 });
      return JSON.parse(stdout.trim().split('\n').pop()!);
    };

    const conn = await loadgen('conn-rate', '127.0.0.1', mux.port, HELLO, 4, 1, 0);
    t.equal(conn.errors, 0, 'every connection got its hello echoed');
    t.ok((conn.connections as number) > 0, `${conn.connections} connections in a second`);
    t.ok((conn.p99_us as number) >= (conn.p50_us as number), 'p99 is not below p50');

    const rtt = await loadgen('ping-pong', '127.0.0.1', mux.port, HELLO, 200, 5, 64);
    t.equal(rtt.rounds, 200, 'every round trip came back');

    const bulk = await loadgen('bulk', '127.0.0.1', mux.port, SINK_HELLO, 16, 10);
    t.equal(bulk.ok, true, 'the sink counted every byte sent, hello included, after the FIN');
    t.equal(bulk.bytes, 16 * 1024 * 1024);

    t.equal(mux.proc.exitCode, null, 'the mux is still running');
  },
);
