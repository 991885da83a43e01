// The keys each config table accepts (from schema.ts), and the "unknown key" message that points to the right one.
import type { KeyPath } from './locate.js';
import type { Problems, Table } from './read.js';
import { keysOf, SCHEMA, spec, TABLES, type TableName } from './schema.js';
import { closest } from './suggest.js';

/** Each table's aliases, lowercased: the names other tools use, and the key they mean here. */
const ALIASES: ReadonlyMap<TableName, ReadonlyMap<string, string>> = new Map(
  TABLES.map((table) => [
    table,
    new Map(keysOf(table).flatMap((key) => (spec(table, key).aliases ?? []).map((a) => [a, key] as const))),
  ]),
);

/**
 * Reports every key of `table` the schema does not list for `tableName`, suggesting the closest known
 * key, or the table the key belongs to when it was written under the wrong header. Returns the keys
 * suggested, so a caller can skip "`backend` is missing" when the user wrote `bakend`.
 */
export function checkKeys(p: Problems, path: KeyPath, tableName: TableName, table: Table): Set<string> {
  const known: readonly string[] = keysOf(tableName);
  const suggested = new Set<string>();
  for (const key of Object.keys(table)) {
    if (known.includes(key)) continue;
    let near = ALIASES.get(tableName)?.get(key.toLowerCase());
    const home =
      near === undefined
        ? TABLES.find((t) => t !== tableName && (keysOf(t) as readonly string[]).includes(key))
        : undefined;
    if (near === undefined && home === undefined) near = closest(key, known);
    // "backendz = [...]" is nearer "backend" by spelling but means "backends" by its value.
    if (near === 'backend' && Array.isArray(table[key])) near = 'backends';
    if (near !== undefined) suggested.add(near);
    p.error([...path, key], `unknown key${hint(key, tableName, known, near, home)}`);
  }
  return suggested;
}

function hint(
  key: string,
  tableName: TableName,
  known: readonly string[],
  near: string | undefined,
  home: TableName | undefined,
): string {
  if (near !== undefined) return `; did you mean \`${near}\`?`;
  if (home === undefined) return `; known keys here: ${known.join(', ')}`;
  if (tableName === 'route' && home === '') {
    return `; \`${key}\` is a top-level key, but keys after a [[route]] header belong to that route: move it above the first [[route]]`;
  }
  const header = SCHEMA[home].header;
  if (tableName === 'route' || tableName === '') return `; \`${key}\` belongs in ${header}`;
  return `; \`${key}\` belongs in ${header}, not [${tableName}] (keys belong to the header above them)`;
}
