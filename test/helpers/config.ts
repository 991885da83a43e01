// Builders for the sni-mux TOML a test starts with, written out exactly as a user would write it.

/** A TOML value: a string is quoted, a list bracketed, a number or boolean written bare. */
export type TomlValue = string | string[] | number | boolean;

/** A port on 127.0.0.1, or a whole address such as `"[::1]:443"` or `"nothing.invalid:443"`. */
export type Backend = number | string;

const address = (b: Backend): string => (typeof b === 'number' ? `127.0.0.1:${b}` : b);

const toml = (v: TomlValue): string =>
  Array.isArray(v) ? `[${v.map(toml).join(', ')}]` : typeof v === 'string' ? JSON.stringify(v) : String(v);

const lines = (keys: Record<string, TomlValue>): string =>
  Object.entries(keys)
    .map(([k, v]) => `${k} = ${toml(v)}\n`)
    .join('');

/** A `[name]` table with its keys in order: `table('timeouts', { detect: '300ms' })`. */
export function table(name: string, keys: Record<string, TomlValue>): string {
  return `[${name}]\n${lines(keys)}`;
}

/**
 * A `[[route]]`: its name, then `keys` in order (`protocol`, `sni`, `on_timeout`, `proxy_protocol`…),
 * then `backend`, or `backends` when given a list.
 */
export function route(
  name: string,
  backend: Backend | Backend[],
  keys: Record<string, TomlValue> = {},
): string {
  const to: Record<string, TomlValue> = Array.isArray(backend)
    ? { backends: backend.map(address) }
    : { backend: address(backend) };
  return `[[route]]\n${lines({ name, ...keys, ...to })}`;
}

/** `listen = ["127.0.0.1:0"]` (one free loopback port), then the tables and routes given, in order. */
export function muxConfig(...parts: string[]): string {
  return ['listen = ["127.0.0.1:0"]\n', ...parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`))].join('');
}
