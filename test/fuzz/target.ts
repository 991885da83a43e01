// What a fuzz target is: seeds, a dictionary and a check that throws when an invariant breaks.
import { readdirSync, readFileSync } from 'node:fs';

export interface FuzzTarget {
  readonly name: string;
  /** One line for --list and the README. */
  readonly about: string;
  /** Inputs to start from when the corpus is empty: real captures and hand-made corner cases. */
  seeds(): Uint8Array[];
  /**
   * Inputs drawn from fast-check arbitraries with a fixed seed: regenerated on every run rather than
   * stored, for paths a volume of well-formed inputs reaches (an allocator's refill) and no single one does.
   */
  generated?(): Uint8Array[];
  /** Tokens the mutator splices in: magic bytes, keywords, separators. */
  readonly dictionary: readonly Uint8Array[];
  /** Inputs are cut to this length: longer ones only repeat paths already seen. */
  readonly maxLen: number;
  /** Runs the code under test on one input; throws an Error naming the broken invariant. */
  check(data: Uint8Array): void;
}

/** A broken invariant, with what the input made the code say. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export function fail(message: string): never {
  throw new InvariantError(message);
}

/** Bytes of a string, one byte per char (latin1), so tokens can hold any byte. */
export function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
}

/** What a run starts from besides the corpus: the seeds, then the generated inputs. */
export function starts(target: FuzzTarget): Uint8Array[] {
  return [...target.seeds(), ...(target.generated?.() ?? [])];
}

/** Every *.bin file in test/fixtures/<dir>/, as seeds. */
export function fixtures(dir: string): Uint8Array[] {
  const url = new URL(`../fixtures/${dir}/`, import.meta.url);
  return readdirSync(url)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(new URL(f, url))));
}
