// lib/net/ip: every way of writing an address parses to its bytes and prints back in RFC 5952's one form.
import fc from 'fast-check';
import t from 'tap';
import { formatIp, isV4Mapped, parseCidr, parseIpText } from '../lib/net/ip.js';
import { property } from './helpers/property.js';

/** 16 bytes with zero groups common, so "::" runs of every length and position come up. */
const v6Bytes = fc
  .tuple(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  )
  .map(([b, zero]) => {
    for (let i = 0; i < 8; i++) if (zero[i]) b.fill(0, i * 2, i * 2 + 2);
    return b;
  });

/** One of the many RFC 4291 texts for `b`: any case, leading zeros, any zero run as "::", a dotted tail. */
const anyText = (b: Uint8Array) =>
  fc
    .record({
      upper: fc.boolean(),
      pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      squeeze: fc.nat(),
      dotted: fc.boolean(),
    })
    .map(({ upper, pad, squeeze, dotted }) => {
      const groups: string[] = [];
      for (let i = 0; i < 8; i++) {
        const hex = ((b[i * 2]! << 8) | b[i * 2 + 1]!).toString(16);
        groups.push((upper ? hex.toUpperCase() : hex).padStart(Math.min(4, hex.length + pad[i]!), '0'));
      }
      if (dotted) groups.splice(6, 2, `${b[12]}.${b[13]}.${b[14]}.${b[15]}`);
      // Zero runs (in whole groups, not the dotted tail): pick one to write as "::", or none.
      const runs: [number, number][] = [];
      for (let i = 0; i < groups.length; i++) {
        if (!/^0+$/.test(groups[i]!)) continue;
        let j = i;
        while (j < groups.length && /^0+$/.test(groups[j]!)) j++;
        runs.push([i, j]);
        i = j;
      }
      const pick = runs[squeeze % (runs.length + 1)];
      if (pick === undefined) return groups.join(':');
      return `${groups.slice(0, pick[0]).join(':')}::${groups.slice(pick[1]).join(':')}`;
    });

/** RFC 5952 as WHATWG URL hosts print it; IPv4-mapped keeps a dotted tail, the way Node and nginx do. */
function canonical(b: Uint8Array, text: string): string {
  if (isV4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

t.test('format(parse(x)) is the one RFC 5952 text for every way x writes an IPv6 address', async (t) => {
  property(
    t,
    'holds',
    fc.property(
      v6Bytes.chain((b) => fc.tuple(fc.constant(b), anyText(b))),
      ([b, text]) => {
        const parsed = parseIpText(text, 6);
        return (
          parsed !== undefined && Buffer.from(parsed).equals(b) && formatIp(parsed) === canonical(b, text)
        );
      },
    ),
  );
});

t.test('format(parse(x)) is x for every dotted-quad IPv4 address', async (t) => {
  property(
    t,
    'holds',
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
      const text = b.join('.');
      return formatIp(parseIpText(text, 4)!) === text;
    }),
  );
});

t.test('the longest zero run is "::", also when it ends the address', async (t) => {
  const f = (text: string) => formatIp(parseIpText(text, 6)!);
  t.equal(f('2001:db8:0:0:1:0:0:0'), '2001:db8:0:0:1::');
  t.equal(f('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first of equal runs');
  t.equal(f('0:0:0:1:0:0:0:0'), '0:0:0:1::', 'a later, longer run wins');
  const r = parseCidr('2001:db8:0:0:1:0:0:1/80');
  t.match(r, { kind: 'error', message: /did you mean "2001:db8:0:0:1::\/80"/ }, 'CIDR hints print it too');
});
