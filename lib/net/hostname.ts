// Host names, the one module for them: syntax, the normal form config patterns take, the wildcard rule.
// Detectors report names lowercased without a trailing dot; patterns are kept in that form, so matching
// is a string compare ("blog.bjk.is") or a suffix compare ("*.bjk.is": any deeper name, not the apex).

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/** DNS name syntax (letters, digits, "-", "_"; labels 1..63; total <= 253; one trailing dot allowed). */
export function isHostname(text: string): boolean {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0 || name.length > 253) return false;
  for (const label of name.split('.')) if (!LABEL.test(label)) return false;
  return true;
}

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Stricter, for names a client supplies (backend templates): RFC 1123 host name: LDH labels of 1..63, at most 253 in all, no trailing dot, last label not all digits. */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  for (const label of labels) if (!LDH_LABEL.test(label)) return false;
  // An all-digit last label would make "10.0.0.5" a "name": a client must never pick an address.
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

export type NameResult = { kind: 'ok'; name: string } | { kind: 'error'; message: string };

/**
 * A name or a leading-wildcard pattern ("*.example.com"), lowercased and without a trailing dot,
 * as the detectors report names, so matching is a plain string compare or suffix compare.
 */
export function parseNamePattern(text: string): NameResult {
  const err = (message: string): NameResult => ({ kind: 'error', message });
  const lower = text.toLowerCase();
  if (lower === '*' || lower === '*.') {
    return err(
      `"${text}" would match every name; leave the key out instead (protocol = "tls" matches any TLS)`,
    );
  }
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/([^/:]*)/.exec(lower);
  if (scheme !== null) return err(`"${text}": write just the name, like "${scheme[1]}"`);
  const wildcard = lower.startsWith('*.');
  let rest = wildcard ? lower.slice(2) : lower;
  if (rest.includes('*'))
    return err(`"${text}": a wildcard may only be a leading "*.", like "*.example.com"`);
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && /^[0-9]+$/.test(rest.slice(colon + 1)) && !rest.slice(0, colon).includes(':')) {
    const name = `${wildcard ? '*.' : ''}${rest.slice(0, colon)}`;
    return err(`"${text}": write the name without the port, like "${name}"`);
  }
  if (!isHostname(rest))
    return err(`"${text}" is not a valid host name, like "example.com" or "*.example.com"`);
  if (rest.endsWith('.')) rest = rest.slice(0, -1);
  return { kind: 'ok', name: wildcard ? `*.${rest}` : rest };
}

/** Does one pattern ("blog.bjk.is" or "*.bjk.is") match a lowercased name? */
export function nameMatches(pattern: string, name: string): boolean {
  if (pattern.charCodeAt(0) !== 42 /* '*' */) return pattern === name;
  return name.length > pattern.length - 1 && name.endsWith(pattern.slice(1));
}

/**
 * True when every name `later` matches is also matched by `earlier`: equal, or `earlier` is "*.d"
 * and matches what `later` names (so "*.d" covers "x.d" and "*.x.d", but not "d").
 */
export function nameCovers(earlier: string, later: string): boolean {
  if (earlier === later) return true;
  if (!later.startsWith('*.')) return nameMatches(earlier, later);
  return earlier.startsWith('*.') && nameMatches(earlier, later.slice(2));
}
