// Byte tests the probes share: a probe reads as its signature, not as loops over buffers.

/** buf[i..] holds pat. */
export const EQUAL = 1;
/** buf ends before pat does, equal so far: more bytes could decide. */
export const SHORT = -1;
/** buf[i..] differs from pat. */
export const DIFFERENT = 0;

/** Compares buf from offset i with pat, as far as buf goes: EQUAL, SHORT or DIFFERENT. */
export function compareAt(buf: Uint8Array, i: number, pat: readonly number[]): number {
  for (let j = 0; j < pat.length; j++) {
    if (i + j >= buf.length) return SHORT;
    if (buf[i + j] !== pat[j]) return DIFFERENT;
  }
  return EQUAL;
}

/** ASCII "0".."9". */
export function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/** What skipDigits returns when the run of digits is longer than allowed. */
export const TOO_MANY_DIGITS = -1;

/**
 * The index just past the run of ASCII digits starting at buf[i] (i itself when there is none, or
 * buf.length when the run reaches the end), or TOO_MANY_DIGITS once the run is longer than `max`.
 */
export function skipDigits(buf: Uint8Array, i: number, max: number): number {
  const start = i;
  while (i < buf.length && isDigit(buf[i]!)) {
    i++;
    if (i - start > max) return TOO_MANY_DIGITS;
  }
  return i;
}
