// The test PKI OpenVPN needs: a CA, server and client certificates, and the tls-auth/tls-crypt(-v2) keys.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { program, run } from './programs.js';

export async function must(file: string, args: string[], cwd: string): Promise<void> {
  const r = await run(file, args, { cwd });
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
}

/** A test CA and server/client certificates with the key usages `--remote-cert-tls server` checks. */
export async function makePki(dir: string): Promise<void> {
  const openssl = program('openssl');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await must(
    openssl,
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=sni-mux test CA',
    ],
    dir,
  );
  await Promise.all(
    (['server', 'client'] as const).map(async (who) => {
      await must(
        openssl,
        ['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`],
        dir,
      );
      writeFileSync(
        join(dir, `${who}.ext`),
        `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=${who === 'server' ? 'serverAuth' : 'clientAuth'}\n`,
      );
      await must(
        openssl,
        [
          'x509',
          '-req',
          '-in',
          `${who}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-set_serial',
          who === 'server' ? '1' : '2',
          '-out',
          `${who}.crt`,
          '-days',
          '2',
          '-extfile',
          `${who}.ext`,
        ],
        dir,
      );
    }),
  );
  const openvpn = program('openvpn');
  await must(openvpn, ['--genkey', 'secret', 'ta.key'], dir);
  await must(openvpn, ['--genkey', 'tls-crypt-v2-server', 'v2-server.key'], dir);
  await must(
    openvpn,
    ['--genkey', 'tls-crypt-v2-client', 'v2-client.key', '--tls-crypt-v2', 'v2-server.key'],
    dir,
  );
}

/** openvpn options both ends of a test tunnel share: no device, the test CA, logs that show the handshake. */
export const OPENVPN_COMMON: readonly string[] = [
  '--dev',
  'null',
  '--ca',
  'ca.crt',
  '--verb',
  '3',
  '--suppress-timestamps',
];

/** The server end's options: listen on 127.0.0.1:port with the certificate makePki wrote. */
export function openvpnServerArgs(port: number): string[] {
  return [
    '--local',
    '127.0.0.1',
    '--lport',
    String(port),
    '--tls-server',
    '--cert',
    'server.crt',
    '--key',
    'server.key',
    '--dh',
    'none',
  ];
}
