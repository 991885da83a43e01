// Typed readers over raw TOML values that record a located, explained problem instead of throwing.
import { parseDuration } from './duration.js';
import type { KeyPath, TomlIndex } from './locate.js';
import { locate } from './locate.js';
import type { ConfigProblem } from './types.js';

/** Collects every problem found, with file, line, column and key path, so the user sees them all at once. */
export class Problems {
  readonly errors: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];

  constructor(
    readonly file: string,
    readonly index: TomlIndex,
  ) {}

  /** `value` (and its `nth` repeat) pins a list element to its own line and column. */
  make(path: KeyPath, message: string, value?: string, nth = 0): ConfigProblem {
    const pos = locate(this.index, path, value, nth);
    const p: ConfigProblem = { file: this.file, message };
    if (pos !== undefined) {
      p.line = pos.line;
      p.column = pos.column;
    }
    if (path.length > 0) p.key = keyText(path);
    return p;
  }

  error(path: KeyPath, message: string, value?: string, nth = 0): void {
    this.errors.push(this.make(path, message, value, nth));
  }

  warn(path: KeyPath, message: string, value?: string): void {
    this.warnings.push(this.make(path, message, value));
  }
}

/** ['route', 2, 'sni', 0] → "route[3].sni[1]": indexes count from 1, as users count. */
export function keyText(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part + 1}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

export type Table = { readonly [key: string]: unknown };

export function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** How a value reads in a message: its TOML type and the value itself when short. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'bigint') return `the number ${v}`;
  if (typeof v === 'boolean') return `${v}`;
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return 'a date';
  if (isTable(v)) return 'a table';
  return typeof v;
}

export function readString(p: Problems, path: KeyPath, v: unknown, example: string): string | undefined {
  if (typeof v === 'string') return v;
  p.error(path, `expected a string like ${example}, got ${describe(v)}`);
  return undefined;
}

export function readBool(p: Problems, path: KeyPath, v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  const hint = v === 'true' || v === 'false' ? `; write ${v} without quotes` : '';
  p.error(path, `expected true or false, got ${describe(v)}${hint}`);
  return undefined;
}

/** A whole number in [min, max]. TOML floats that are whole (1e4) are accepted. */
export function readInt(
  p: Problems,
  path: KeyPath,
  v: unknown,
  min: number,
  max: number,
): number | undefined {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n === 'number' && Number.isInteger(n)) {
    if (n >= min && n <= max) return n;
    p.error(path, `${n} is out of range; write a number from ${min} to ${max}`);
    return undefined;
  }
  const hint = typeof v === 'string' && /^[0-9]+$/.test(v) ? `; write ${v} without quotes` : '';
  p.error(path, `expected a whole number from ${min} to ${max}, got ${describe(v)}${hint}`);
  return undefined;
}

/**
 * A list of strings, or a single string standing for a one-element list. Each element goes through
 * `each`, which reports its own problems (with the element's path, and `nth`: how many equal strings
 * came before it, so the locator finds this one) and returns undefined on error.
 * Undefined when the list itself is unusable; erroneous elements are left out of the result.
 */
export function readList<T>(
  p: Problems,
  path: KeyPath,
  v: unknown,
  example: string,
  each: (text: string, path: KeyPath, nth: number) => T | undefined,
): T[] | undefined {
  if (typeof v === 'string') {
    const one = each(v, path, 0);
    return one === undefined ? undefined : [one];
  }
  if (!Array.isArray(v)) {
    p.error(path, `expected a list of strings like ${example}, got ${describe(v)}`);
    return undefined;
  }
  if (v.length === 0) {
    p.error(
      path,
      `is an empty list, which matches nothing; list at least one, like ${example}, or remove the key`,
    );
    return undefined;
  }
  const out: T[] = [];
  const times = new Map<string, number>();
  for (let i = 0; i < v.length; i++) {
    const item: unknown = v[i];
    const itemPath = [...path, i];
    if (typeof item !== 'string') {
      p.error(
        itemPath,
        `expected a string like ${/"[^"]*"/.exec(example)?.[0] ?? example}, got ${describe(item)}`,
      );
      continue;
    }
    const nth = times.get(item) ?? 0;
    times.set(item, nth + 1);
    const parsed = each(item, itemPath, nth);
    if (parsed !== undefined) out.push(parsed);
  }
  return out;
}

/** A duration string in milliseconds; 0 only where it means "off" or "at once". */
export function readDuration(p: Problems, path: KeyPath, v: unknown, allowZero: boolean): number | undefined {
  if (typeof v === 'number') {
    p.error(path, `${v} needs a unit, like "${v}s" (units: ms, s, m, h)`);
    return undefined;
  }
  if (typeof v !== 'string') {
    p.error(path, `expected a duration like "5s" or "1m30s", got ${describe(v)}`);
    return undefined;
  }
  const r = parseDuration(v);
  if (r.kind === 'error') {
    p.error(path, r.message);
    return undefined;
  }
  if (r.ms === 0 && !allowZero) {
    p.error(path, `must be more than 0, like "5s"`);
    return undefined;
  }
  return r.ms;
}
