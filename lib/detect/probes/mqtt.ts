// The MQTT probe: a client's first packet is CONNECT, naming protocol "MQTT" (3.1.1, 5) or "MQIsdp" (3.1).

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';

const MATCH = matched('mqtt');
const NOT_CONNECT = noMatch('first byte is not an MQTT CONNECT (0x10)');
const BAD_LENGTH = noMatch('MQTT remaining length is malformed or too short');
const BAD_NAME = noMatch('MQTT protocol name is not MQTT or MQIsdp');
const BAD_LEVEL = noMatch('MQTT protocol level does not fit its name');
const BAD_FLAGS = noMatch('MQTT connect flags reserved bit is set');

const MQTT = [0x00, 0x04, 0x4d, 0x51, 0x54, 0x54] as const; // length-prefixed "MQTT"
const MQISDP = [0x00, 0x06, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70] as const; // length-prefixed "MQIsdp"
/** Variable header after the name: protocol level, connect flags, keep alive (2). */
const AFTER_NAME = 4;

/**
 * Matches fixed header 0x10 (CONNECT, flags 0), a 1-4 byte remaining length that covers at least the
 * variable header, the protocol name "MQTT" with level 4 (3.1.1) or 5 (5.0), or "MQIsdp" with level 3
 * (3.1), and connect flags with the reserved bit 0 clear. Decides once the flags byte is here.
 * sslh has no MQTT probe.
 */
export const probeMqtt: Probe = (buf) => {
  const n = buf.length;
  if (n === 0) return NEED_MORE;
  if (buf[0] !== 0x10) return NOT_CONNECT;
  // Remaining length: little-endian base-128, continuation in the top bit, at most 4 bytes.
  let remaining = 0;
  let i = 1;
  for (let shift = 0; ; shift += 7) {
    if (i > 4) return BAD_LENGTH;
    if (i >= n) return NEED_MORE;
    const b = buf[i]!;
    i++;
    remaining += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
  }
  if (remaining < MQTT.length + AFTER_NAME) return BAD_LENGTH;
  // The name: both candidates share "\0" then differ in the length byte.
  if (i >= n) return NEED_MORE;
  if (buf[i] !== 0) return BAD_NAME;
  if (i + 1 >= n) return NEED_MORE;
  const name = buf[i + 1] === 4 ? MQTT : buf[i + 1] === 6 ? MQISDP : undefined;
  if (name === undefined) return BAD_NAME;
  if (remaining < name.length + AFTER_NAME) return BAD_LENGTH;
  for (let j = 2; j < name.length; j++) {
    if (i + j >= n) return NEED_MORE;
    if (buf[i + j] !== name[j]) return BAD_NAME;
  }
  i += name.length;
  if (i >= n) return NEED_MORE;
  const level = buf[i]!;
  if (name === MQTT ? level !== 4 && level !== 5 : level !== 3) return BAD_LEVEL;
  i++;
  if (i >= n) return NEED_MORE;
  return (buf[i]! & 0x01) === 0 ? MATCH : BAD_FLAGS;
};
