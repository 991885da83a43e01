// A TLS ClientHello no route takes is answered with one fatal unrecognized_name alert record, then closed.
import t from 'tap';
import { exchange } from './helpers/clients.js';
import { muxConfig, route } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { connectionLine, nextConnectionLine, startMux } from './helpers/mux.js';
import { missing, program, run } from './helpers/programs.js';
import { startRecorder } from './helpers/servers.js';

/** Record type 21 (alert), version 3.3, length 2, fatal (2), unrecognized_name (112). */
const ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);

const known = await startRecorder(t, 'known');
const mux = await startMux(t, muxConfig(route('known', known.port, { sni: 'known.test' })));

t.test('a ClientHello for an unknown name gets exactly one unrecognized_name alert record', async (t) => {
  const ex = await exchange(mux.port, buildClientHello({ sni: 'nowhere.example' }));
  t.same([...ex.reply], [...ALERT], 'the bytes received are the alert record and nothing else');
  t.equal(ex.errored, undefined, 'closed with a FIN, not a reset');
  t.match(await connectionLine(mux, ex.localPort), { reject: 'no_route', sni: 'nowhere.example' });
});

t.test('a ClientHello without SNI gets the alert too when no route takes it', async (t) => {
  const ex = await exchange(mux.port, buildClientHello({}));
  t.same([...ex.reply], [...ALERT]);
  t.match(await connectionLine(mux, ex.localPort), { reject: 'no_route', protocol: 'tls' });
});

t.test('a non-TLS client with no route is closed without a byte', async (t) => {
  const ex = await exchange(mux.port, Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'));
  t.equal(ex.reply.length, 0);
  t.match(await connectionLine(mux, ex.localPort), { reject: 'no_route', protocol: 'ssh' });
});

t.test(
  'openssl s_client reports the alert and reads exactly its 7 bytes',
  { skip: missing('openssl') },
  async (t) => {
    const r = await run(program('openssl'), [
      's_client',
      '-connect',
      `127.0.0.1:${mux.port}`,
      '-servername',
      'nowhere.example',
      '-msg',
    ]);
    const out = `${r.text}${r.stderr}`;
    t.not(r.code, 0);
    t.match(out, /alert number 112/);
    t.match(out, /Alert \[length 0002\], fatal unrecognized_name/);
    t.match(out, /handshake has read 7 bytes/, 'one 7-byte alert record, nothing more');
    t.match(await nextConnectionLine(mux, (l) => l.sni === 'nowhere.example'), { reject: 'no_route' });
  },
);

t.test('curl reports an unrecognized name instead of a reset', { skip: missing('curl') }, async (t) => {
  const r = await run(program('curl'), [
    '-sS',
    '--resolve',
    `nowhere.example:${mux.port}:127.0.0.1`,
    `https://nowhere.example:${mux.port}/`,
  ]);
  t.equal(r.code, 35, 'curl exit 35: TLS handshake failed');
  t.match(r.stderr, /unrecognized name/);
});

t.test('a known name is still relayed', async (t) => {
  const hello = buildClientHello({ sni: 'known.test' });
  const ex = await exchange(mux.port, hello);
  t.match(ex.reply.toString(), /^known \d+ /);
});
