// Mutations of a byte string, AFL/libFuzzer style: flips, interesting values, length fields, splices, tokens.

/** A small, seedable PRNG (xorshift32): runs are reproducible from --seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** 0 ≤ n < bound. */
  below(bound: number): number {
    return bound <= 0 ? 0 : this.next() % bound;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x0a, 0x0d, 0x3a, 0x2e, 0x16, 0x03];
const INTERESTING16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xffff];

/** Applies 1 to 5 stacked mutations to a copy of `input`; `other` is a second corpus entry to splice from. */
export function mutate(
  input: Uint8Array,
  other: Uint8Array,
  dictionary: readonly Uint8Array[],
  maxLen: number,
  rng: Rng,
): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = 1 + rng.below(5);
  for (let r = 0; r < rounds; r++) b = mutateOnce(b, other, dictionary, rng);
  return b.length > maxLen ? b.subarray(0, maxLen) : b;
}

function mutateOnce(
  b: Uint8Array,
  other: Uint8Array,
  dictionary: readonly Uint8Array[],
  rng: Rng,
): Uint8Array {
  const n = b.length;
  switch (rng.below(12)) {
    case 0: // flip one bit
      if (n > 0) b[rng.below(n)]! ^= 1 << rng.below(8);
      return b;
    case 1: // random byte
      if (n > 0) b[rng.below(n)] = rng.below(256);
      return b;
    case 2: // interesting byte
      if (n > 0) b[rng.below(n)] = rng.pick(INTERESTING8);
      return b;
    case 3: {
      // A 16-bit big-endian field: most length fields in TLS, PROXY v2, Postgres, MQTT…
      if (n < 2) return b;
      const i = rng.below(n - 1);
      const v = rng.below(3) === 0 ? ((b[i]! << 8) | b[i + 1]!) + rng.below(5) - 2 : rng.pick(INTERESTING16);
      b[i] = (v >> 8) & 0xff;
      b[i + 1] = v & 0xff;
      return b;
    }
    case 4: // truncate
      return b.subarray(0, rng.below(n + 1));
    case 5: {
      // delete a block
      if (n === 0) return b;
      const at = rng.below(n);
      const len = 1 + rng.below(Math.min(16, n - at));
      return concat(b.subarray(0, at), b.subarray(at + len));
    }
    case 6: {
      // insert random bytes
      const ins = new Uint8Array(1 + rng.below(8));
      for (let i = 0; i < ins.length; i++) ins[i] = rng.below(256);
      return insert(b, rng.below(n + 1), ins);
    }
    case 7: {
      // duplicate a block (repeated extensions, headers, labels)
      if (n === 0) return b;
      const at = rng.below(n);
      const len = 1 + rng.below(Math.min(64, n - at));
      return insert(b, rng.below(n + 1), b.slice(at, at + len));
    }
    case 8:
    case 9: {
      // insert or overwrite with a dictionary token
      if (dictionary.length === 0) return b;
      const tok = rng.pick(dictionary);
      const at = rng.below(n + 1);
      if (rng.below(2) === 0 || at + tok.length > n) return insert(b, at, tok);
      b.set(tok, at);
      return b;
    }
    case 10: {
      // splice: our head, the other's tail
      if (other.length === 0) return b;
      return concat(b.subarray(0, rng.below(n + 1)), other.subarray(rng.below(other.length)));
    }
    default: {
      // add or subtract a small number from a byte (counters, lengths)
      if (n === 0) return b;
      const i = rng.below(n);
      b[i] = (b[i]! + rng.below(33) - 16) & 0xff;
      return b;
    }
  }
}

function insert(b: Uint8Array, at: number, ins: Uint8Array): Uint8Array {
  return concat(b.subarray(0, at), ins, b.subarray(at));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
