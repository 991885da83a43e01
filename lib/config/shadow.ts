// Warns about routes that can never be chosen because an earlier route takes every connection they would.
import { nameCovers } from '../net/hostname.js';
import { cidrContains } from '../net/ip.js';
import { keysOf, spec, type ValueType } from './schema.js';
import type { Cidr, ConfigProblem, RouteConfig } from './types.js';

/**
 * One warning per route that an earlier route shadows completely: the earlier route has no match key
 * the later one lacks, and each of its lists covers the later one's. Conservative: a route covered
 * only by several earlier routes together is not reported. on_timeout routes are never reported,
 * since they still take clients that send nothing.
 */
export function shadowWarnings(routes: readonly RouteConfig[], file: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (let j = 0; j < routes.length; j++) {
    const later = routes[j]!;
    if (later.onTimeout) continue;
    for (let i = 0; i < j; i++) {
      const earlier = routes[i]!;
      if (!covers(earlier, later)) continue;
      const p: ConfigProblem = {
        file,
        key: `route[${later.index + 1}]`,
        message: `"${later.name}" is never used: route[${earlier.index + 1}] ("${earlier.name}") comes first and matches every connection it would; move "${later.name}" above it, or narrow "${earlier.name}"`,
      };
      if (later.line !== undefined) {
        p.line = later.line;
        p.column = 1;
      }
      out.push(p);
      break;
    }
  }
  return out;
}

type Covers = (a: never, b: never) => boolean;

/** How one item of a match list covers another, by the list's value type; by default, by being equal. */
const ITEM_COVERS: Partial<Record<ValueType, Covers>> = { names: nameCovers, cidrs: cidrCovers };

/** The route's match lists (on_timeout, a flag, is left to the caller), each with its item comparison. */
const MATCH_LISTS: readonly [string, Covers][] = keysOf('route').flatMap((key) => {
  const row = spec('route', key);
  if (row.route !== 'match' || row.type === 'bool') return [];
  return [[row.field, ITEM_COVERS[row.type] ?? ((a: unknown, b: unknown) => a === b)] as [string, Covers]];
});

/** True when every connection `later` matches is also matched by `earlier`. */
export function covers(earlier: RouteConfig, later: RouteConfig): boolean {
  const a = earlier as unknown as Readonly<Record<string, readonly never[] | undefined>>;
  const b = later as unknown as Readonly<Record<string, readonly never[] | undefined>>;
  return (
    earlier.transport === later.transport &&
    MATCH_LISTS.every(([field, itemCovers]) => listCovers(a[field], b[field], itemCovers))
  );
}

/** An absent key matches anything; a present one covers only a present list whose every item it covers. */
function listCovers<T>(
  earlier: readonly T[] | undefined,
  later: readonly T[] | undefined,
  itemCovers: (a: T, b: T) => boolean,
): boolean {
  if (earlier === undefined) return true;
  if (later === undefined) return false;
  return later.every((b) => earlier.some((a) => itemCovers(a, b)));
}

function cidrCovers(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix <= b.prefix && cidrContains(a, b.bytes);
}
