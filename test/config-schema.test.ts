// lib/config/schema.ts is the one list of config keys: docs/configuration.md documents exactly its rows,
// with their defaults and ranges, and the validated config holds exactly what its rows say.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseDuration } from '../lib/config/duration.js';
import { formatProblem, parseConfig } from '../lib/config/load.js';
import { keysOf, type Raw, rows, SCHEMA, spec, TABLES, type TableName } from '../lib/config/schema.js';

const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');

/** The docs' `## ` sections, by the table they document: "Top-level keys" is '', "`[timeouts]`" is timeouts. */
function sections(): Map<TableName, string> {
  const out = new Map<TableName, string>();
  for (const part of docs.split(/^## /m).slice(1)) {
    const title = part.slice(0, part.indexOf('\n'));
    const table = title === 'Top-level keys' ? '' : /^`\[\[?([a-z_]+)\]\]?`$/.exec(title)?.[1];
    if (table !== undefined) out.set(table as TableName, part);
  }
  return out;
}

/** The keys a section documents: its `### ` headings and the first column of its "| Key |" tables. */
function documentedKeys(section: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [, heading, body] of section.matchAll(/^### (.*)\n([\s\S]*?)(?=^#{2,3} |(?![\s\S]))/gm)) {
    for (const [, key] of heading!.matchAll(/`([a-z_]+)`/g)) out.set(key!, body!);
  }
  for (const [table] of section.matchAll(/^\| Key \|.*\n(?:\|.*\n)*/gm)) {
    const header = table.slice(0, table.indexOf('\n'));
    for (const line of table.split('\n').slice(2)) {
      const key = /^\| `([a-z_]+)` \|/.exec(line)?.[1];
      if (key !== undefined) out.set(key, `${header}\n${line}`);
    }
  }
  return out;
}

const documented = new Map<TableName, Map<string, string>>();
for (const [table, text] of sections()) documented.set(table, documentedKeys(text));
// A table is documented at the top level by its own `## ` section.
for (const table of documented.keys()) if (table !== '') documented.get('')?.set(table, '');

t.test(
  'every schema row is documented in its table’s section, and every documented key is a row',
  async (t) => {
    t.same([...documented.keys()].sort(), [...TABLES].sort(), 'one section per table');
    for (const { table, key, name } of rows()) {
      t.ok(documented.get(table)?.has(key), `${name} is documented under ${SCHEMA[table].header}`);
    }
    for (const [table, keys] of documented) {
      for (const key of keys.keys()) {
        t.ok(
          (keysOf(table) as readonly string[]).includes(key),
          `documented ${table}.${key} is a schema row`,
        );
      }
    }
  },
);

t.test('the documented defaults and ranges are the schema’s', async (t) => {
  for (const { table, key, name, spec: row } of rows()) {
    const text = documented.get(table)?.get(key) ?? '';
    if (row.default !== undefined) {
      // In a "| Key | ... | Default |" table the column named Default; in a `### ` section its "| Default |" row.
      const lines = text.split('\n');
      const column = lines[0]!.split('|').findIndex((c) => c.trim() === 'Default');
      const cell =
        column > 0
          ? lines[1]!.split('|')[column]!.trim()
          : (/^\| Default \| (.*) \|$/m.exec(text)?.[1] ?? '').trim();
      const value = cell.replace(/^`"?|"?`$/g, '');
      const ms = parseDuration(value);
      const same =
        row.type === 'duration' ? ms.kind === 'ok' && ms.ms === row.default : value === String(row.default);
      t.ok(same, `${name}: documented default ${cell} is the schema's ${row.default}`);
    }
    if (row.min !== undefined) {
      const range = [`${row.min} – ${row.max}`, `${row.min} to ${row.max}`];
      t.ok(
        range.some((r) => text.includes(r)),
        `${name}: the documented range is ${row.min} to ${row.max}`,
      );
    }
  }
});

t.test('writing every default out gives the config that leaving them out gives', async (t) => {
  const head = 'listen = "127.0.0.1:8443"\n';
  const route = '[[route]]\nname = "web"\nbackend = "127.0.0.1:9443"\n';
  const written = (['timeouts', 'limits', 'log', 'health'] as const).map((table) => {
    const lines = keysOf(table).map((key) => {
      const row = spec(table, key);
      const v =
        row.type === 'int' ? String(row.default) : `"${row.default}${row.type === 'duration' ? 'ms' : ''}"`;
      return `${key} = ${v}`;
    });
    return `[${table}]\n${lines.join('\n')}\n`;
  });
  const bare = parseConfig(head + route, 'mux.toml');
  const full = parseConfig(head + written.join('') + route, 'mux.toml');
  t.equal(full.kind, 'ok');
  t.same(full.kind === 'ok' && full.warnings, []);
  if (bare.kind !== 'ok' || full.kind !== 'ok') return;
  for (const section of ['timeouts', 'limits', 'log', 'health'] as const) {
    t.same(full.config[section], bare.config[section], `[${section}] defaults`);
  }
  // Top-level defaults are applied too: without the key, the native plane is asked for.
  t.equal(bare.config.dataPlane, 'native', 'data_plane defaults to native');
  t.equal(bare.config.workers, 1, 'workers defaults to 1');
});

t.test('aliases name no key of their table and no two keys', async (t) => {
  for (const table of TABLES) {
    const seen = new Map<string, string>();
    for (const key of keysOf(table)) {
      for (const alias of spec(table, key).aliases ?? []) {
        t.notOk((keysOf(table) as readonly string[]).includes(alias), `${alias} is not itself a key`);
        t.notOk(seen.has(alias), `${alias} means one key of ${SCHEMA[table].header}`);
        seen.set(alias, key);
      }
    }
  }
});

t.test('a key that is not a row does not compile where raw tables are read', async (t) => {
  const limits: Raw<'limits'> = { max_connections: 5 };
  // @ts-expect-error: a typo of max_connections is not a [limits] row (tsc -p tsconfig.test.json checks this)
  t.equal(limits.max_conections, undefined);
  t.equal(limits.max_connections, 5);
});

t.test('a key under the wrong header is pointed to its table, [admin] included', async (t) => {
  const text =
    'listen = "127.0.0.1:8443"\n[timeouts]\nallow = ["127.0.0.1"]\n[[route]]\nname = "web"\nbackend = "127.0.0.1:9443"\n';
  const r = parseConfig(text, 'mux.toml');
  t.same(r.kind === 'error' && r.errors.map(formatProblem), [
    'mux.toml:3:1: timeouts.allow: unknown key; `allow` belongs in [admin], not [timeouts] (keys belong to the header above them)',
  ]);
});
