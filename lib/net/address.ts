// host:port endpoints as config writes them: "127.0.0.1:443", "[::1]:443", "backend.lan:443".
import type { Endpoint } from '../config/types.js';
import { isHostname } from './hostname.js';
import { ipBytes, parseIpv6 } from './ip.js';

export type EndpointResult = { kind: 'ok'; endpoint: Endpoint } | { kind: 'error'; message: string };

/**
 * "host:port", "[v6]:port" or "name:port"; messages say what to write instead.
 * anyPort: a listen address may say port 0, "any free port" (tests, and the bound port is logged).
 */
export function parseEndpoint(text: string, anyPort = false): EndpointResult {
  const err = (message: string): EndpointResult => ({ kind: 'error', message });
  if (text.length === 0) return err('is empty; write "host:port", like "127.0.0.1:443"');
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return err(`"${text}" has no closing "]"; write IPv6 like "[::1]:443"`);
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    const pct = host.indexOf('%');
    const addr = pct === -1 ? host : host.slice(0, pct);
    const zone = pct === -1 ? '' : host.slice(pct + 1);
    if (parseIpv6(addr) === undefined || (pct !== -1 && !/^[A-Za-z0-9_.-]+$/.test(zone))) {
      return err(`"${host}" in brackets is not an IPv6 address`);
    }
    if (after === '') return err(`"${text}" needs a port, like "${text}:443"`);
    if (!after.startsWith(':'))
      return err(`"${text}": write the port after the brackets, like "[${host}]:443"`);
    portText = after.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return err(`"${text}" needs a port, like "${text}:443"`);
    if (text.indexOf(':') !== colon) {
      // "2001:db8::1:443" is itself valid IPv6, but a trailing decimal group most likely meant a port.
      const tail = text.slice(colon + 1);
      const split = /^[0-9]{1,5}$/.test(tail) && parseIpv6(text.slice(0, colon)) !== undefined;
      const like = split
        ? `[${text.slice(0, colon)}]:${tail}`
        : `[${parseIpv6(text) !== undefined ? text : '2001:db8::1'}]:443`;
      return err(`"${text}": put IPv6 addresses in brackets, like "${like}"`);
    }
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') return err(`"${text}" needs a host before the port, like "0.0.0.0${text}"`);
    if (/^[0-9.]+$/.test(host)) {
      if (ipBytes(host) === undefined) return err(`"${host}" is not a valid IPv4 address`);
    } else if (!isHostname(host)) {
      return err(`"${host}" is not a valid host name or IP address`);
    }
  }
  const min = anyPort ? 0 : 1;
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < min || Number(portText) > 65535) {
    return err(`port "${portText}" in "${text}" must be a number from ${min} to 65535`);
  }
  return { kind: 'ok', endpoint: { host, port: Number(portText), text } };
}
