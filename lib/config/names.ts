// Host name patterns for `sni` and `host`: syntax checks and the normal form the router compares against.
import { isHostname } from '../net/address.js';

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

/**
 * True when every name `later` matches is also matched by `earlier`: equal, or `earlier` is "*.d"
 * and `later` ends in ".d" (so "*.d" covers "x.d" and "*.x.d", but not "d").
 */
export function nameCovers(earlier: string, later: string): boolean {
  if (earlier === later) return true;
  if (!earlier.startsWith('*.')) return false;
  const suffix = earlier.slice(1);
  const body = later.startsWith('*.') ? later.slice(1) : later;
  return body.endsWith(suffix) && body.length > suffix.length;
}
