// Finds the line and column of TOML tables and keys by scanning the text, because smol-toml reports none.
//
// Good enough for config files people write by hand. Limits:
// - keys inside inline tables (`timeouts = { detect = "5s" }`) are not indexed; the enclosing key is used;
// - routes written as an inline array (`route = [{ ... }]`) have no headers; the `route` key is used;
// - list elements are found by searching their quoted text after the key, so an element written
//   with escapes ("\u0061") is not found and the key's position is used instead.

export interface Position {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

/** A key path as the validator walks it: ['route', 2, 'sni', 0] is route[3].sni[1] (0-based here). */
export type KeyPath = readonly (string | number)[];

interface KeySpan {
  pos: Position;
  /** Offsets in the text where the key's value may lie: from the key to the next key or header. */
  start: number;
  end: number;
}

interface TableEntry {
  header?: Position;
  keys: Map<string, KeySpan>;
}

export interface TomlIndex {
  text: string;
  root: TableEntry;
  tables: Map<string, TableEntry>;
  /** Array-of-tables headers ([[route]]) in file order. */
  arrays: Map<string, TableEntry[]>;
}

const KEY_PART = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = String.raw`${KEY_PART}(?:\s*\.\s*${KEY_PART})*`;
const ARRAY_HEADER = new RegExp(String.raw`^(\s*)\[\[\s*(${DOTTED})\s*\]\]`);
const TABLE_HEADER = new RegExp(String.raw`^(\s*)\[\s*(${DOTTED})\s*\]`);
const KEY_LINE = new RegExp(String.raw`^(\s*)(${DOTTED})\s*=`);
const KEY_SPLIT = new RegExp(KEY_PART, 'g');

function keyParts(dotted: string): string[] {
  return [...dotted.matchAll(KEY_SPLIT)].map((m) => {
    const k = m[0];
    if (k.startsWith("'")) return k.slice(1, -1);
    if (k.startsWith('"')) {
      try {
        return JSON.parse(k) as string;
      } catch {
        return k.slice(1, -1);
      }
    }
    return k;
  });
}

type StringState = 'none' | 'basic' | 'literal';

/** Scans one line for strings and comments; returns whether a multi-line string is still open at its end. */
function scanLine(line: string, state: StringState): StringState {
  let i = 0;
  let s = state;
  while (i < line.length) {
    if (s === 'basic') {
      const c = line[i];
      if (c === '\\') i += 2;
      else if (line.startsWith('"""', i)) {
        s = 'none';
        i += 3;
      } else i++;
      continue;
    }
    if (s === 'literal') {
      const end = line.indexOf("'''", i);
      if (end === -1) return s;
      s = 'none';
      i = end + 3;
      continue;
    }
    const c = line[i];
    if (c === '#') return 'none';
    if (line.startsWith('"""', i)) {
      s = 'basic';
      i += 3;
    } else if (line.startsWith("'''", i)) {
      s = 'literal';
      i += 3;
    } else if (c === '"') {
      i++;
      while (i < line.length && line[i] !== '"') i += line[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      i = end === -1 ? line.length : end + 1;
    } else i++;
  }
  return s;
}

/** Indexes where every table header and `key =` line is. Pure; never throws. */
export function indexToml(text: string): TomlIndex {
  const root: TableEntry = { keys: new Map() };
  const tables = new Map<string, TableEntry>();
  const arrays = new Map<string, TableEntry[]>();
  let current = root;
  let open: KeySpan | undefined;
  let state: StringState = 'none';
  let offset = 0;
  const lines = text.split('\n');
  const tableFor = (name: string): TableEntry => {
    let t = tables.get(name);
    if (t === undefined) {
      t = { keys: new Map() };
      tables.set(name, t);
    }
    return t;
  };
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    const lineStart = offset;
    offset += line.length + 1;
    if (state !== 'none') {
      state = scanLine(line, state);
      continue;
    }
    const arr = ARRAY_HEADER.exec(line);
    const tab = arr === null ? TABLE_HEADER.exec(line) : null;
    const header = arr ?? tab;
    if (header !== null) {
      if (open !== undefined) open.end = lineStart;
      open = undefined;
      const pos = { line: n + 1, column: header[1]!.length + 1 };
      const name = keyParts(header[2]!).join('.');
      if (arr !== null) {
        const list = arrays.get(name) ?? [];
        arrays.set(name, list);
        current = { header: pos, keys: new Map() };
        list.push(current);
      } else {
        current = tableFor(name);
        current.header ??= pos;
      }
      state = scanLine(line.slice(header[0].length), 'none');
      continue;
    }
    const key = KEY_LINE.exec(line);
    if (key !== null) {
      if (open !== undefined) open.end = lineStart;
      const parts = keyParts(key[2]!);
      const span: KeySpan = {
        pos: { line: n + 1, column: key[1]!.length + 1 },
        start: lineStart + key[0].length,
        end: text.length,
      };
      // A dotted key at the top level ("timeouts.detect = ...") belongs to that table.
      const into = current === root && parts.length > 1 ? tableFor(parts[0]!) : current;
      const name = current === root && parts.length > 1 ? parts[1]! : parts[0]!;
      if (!into.keys.has(name)) into.keys.set(name, span);
      open = span;
      state = scanLine(line.slice(key[0].length), 'none');
      continue;
    }
    state = scanLine(line, 'none');
  }
  return { text, root, tables, arrays };
}

/**
 * The position of a key path: the key's line, or for a list element the element's quoted text when
 * `value` is given and found (its `nth` occurrence, 0-based, for repeated values), or the enclosing
 * table header when the key is not written (e.g. missing).
 */
export function locate(index: TomlIndex, path: KeyPath, value?: string, nth = 0): Position | undefined {
  const first = path[0];
  if (first === undefined || typeof first !== 'string') return undefined;
  let table: TableEntry | undefined;
  let rest: KeyPath;
  const second = path[1];
  if (typeof second === 'number' && index.arrays.has(first)) {
    table = index.arrays.get(first)![second];
    rest = path.slice(2);
    // Inline-array routes have no headers: fall back to the `route = [...]` key.
    if (table === undefined) return index.root.keys.get(first)?.pos;
  } else if (path.length > 1 && index.tables.has(first)) {
    table = index.tables.get(first)!;
    rest = path.slice(1);
  } else {
    table = index.root;
    rest = path;
  }
  const key = rest[0];
  if (key === undefined || typeof key !== 'string') return table.header;
  const span = table.keys.get(key);
  if (span === undefined) {
    // A key the root does not have may be a table written with a header ([limits], [[route]]).
    if (table === index.root && rest.length === 1) {
      return index.tables.get(key)?.header ?? index.arrays.get(key)?.[0]?.header;
    }
    return table.header;
  }
  if (value !== undefined && rest.length > 1) {
    const found = findQuoted(index.text, span, value, nth);
    if (found !== undefined) return found;
  }
  return span.pos;
}

function findQuoted(text: string, span: KeySpan, value: string, nth: number): Position | undefined {
  const region = text.slice(span.start, span.end);
  for (const q of [JSON.stringify(value), `'${value}'`]) {
    let at = region.indexOf(q);
    for (let k = 0; k < nth && at !== -1; k++) at = region.indexOf(q, at + q.length);
    if (at === -1) continue;
    const abs = span.start + at;
    const before = text.lastIndexOf('\n', abs - 1);
    const line = text.slice(0, abs).split('\n').length;
    return { line, column: abs - before };
  }
  return undefined;
}
