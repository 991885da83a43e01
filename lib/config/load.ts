// Entry point for configuration: TOML text (or a file) in, a validated Config or every problem found out.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { indexToml } from './locate.js';
import type { Table } from './read.js';
import { Problems } from './read.js';
import { isKey } from './schema.js';
import { shadowWarnings } from './shadow.js';
import type { ConfigProblem, ConfigResult } from './types.js';
import { validateConfig } from './validate.js';

/** Parses and validates config text. Pure: never throws, never touches the file system. */
export function parseConfig(text: string, file: string): ConfigResult {
  let doc: Table;
  try {
    doc = parse(text);
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    return { kind: 'error', errors: [syntaxProblem(e, text, file)] };
  }
  const p = new Problems(file, indexToml(text));
  const config = validateConfig(doc, p);
  if (config === undefined) return { kind: 'error', errors: byPosition(p.errors) };
  return {
    kind: 'ok',
    config,
    warnings: byPosition([...p.warnings, ...shadowWarnings(config.routes, file)]),
  };
}

/** Reads and validates a config file; a missing or unreadable file is a problem, not a throw. */
export async function loadConfig(file: string): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file; pass the path of your config, or start from examples/mux.toml'
        : code === 'EACCES'
          ? 'permission denied; the file must be readable by the user sni-mux starts as'
          : code === 'EISDIR'
            ? 'is a directory; pass the path of the config file'
            : `cannot read: ${(e as Error).message}`;
    return { kind: 'error', errors: [{ file, message: why }] };
  }
  const result = parseConfig(text, file);
  // Problems keep the path as the user typed it; the Config records where it really is.
  if (result.kind === 'ok') result.config.file = resolve(file);
  return result;
}

/** "mux.toml:12:1: route[3].backend: message", leaving out the parts that are unknown. */
export function formatProblem(p: ConfigProblem): string {
  let where = p.file;
  if (p.line !== undefined) where += `:${p.line}`;
  if (p.line !== undefined && p.column !== undefined) where += `:${p.column}`;
  return p.key === undefined ? `${where}: ${p.message}` : `${where}: ${p.key}: ${p.message}`;
}

function syntaxProblem(e: TomlError, text: string, file: string): ConfigProblem {
  // smol-toml prefixes "Invalid TOML document: " and appends a code excerpt; keep the reason only.
  const reason = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
  let message = `TOML syntax: ${reason}`;
  const line = text.split(/\r?\n/)[e.line - 1] ?? '';
  const bare =
    /^\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_.:/*-]*[A-Za-z:/*-][A-Za-z0-9_.:/*-]*)\s*(#.*)?$/.exec(line);
  if (bare !== null && !/^(true|false|inf|nan|[+-]?(inf|nan))$/.test(bare[2]!)) {
    message += `; text values need quotes, like ${bare[1]} = "${bare[2]}"`;
  }
  message += misplacedRootKey(reason, text, e.line) ?? '';
  return { file, line: e.line, column: e.column, message };
}

/**
 * A top-level key written again under a table that has a key of the same name ([admin] and [[route]]
 * both have `listen`) is a TOML redefinition, not an unknown key: give it the same hint unknown keys get.
 */
function misplacedRootKey(reason: string, text: string, lineNo: number): string | undefined {
  if (!reason.includes('redefine')) return undefined;
  const lines = text.split(/\r?\n/);
  const key = /^\s*([A-Za-z0-9_-]+)\s*=/.exec(lines[lineNo - 1] ?? '')?.[1];
  if (key === undefined || !isKey('', key)) return undefined;
  for (let i = lineNo - 2; i >= 0; i--) {
    const header = /^\s*(\[\[?[^\]]+\]\]?)/.exec(lines[i]!)?.[1];
    if (header !== undefined) {
      return `; \`${key}\` belongs in the top of the file, but keys after a ${header} header belong to that table: move it above the first table header`;
    }
  }
  return undefined;
}

/** File order reads best; problems without a line (a missing key) come first, as they concern the whole file. */
function byPosition(list: ConfigProblem[]): ConfigProblem[] {
  return list.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
