// Durations as users write them in the config ("5s", "15m", "1m30s", "250ms") to and from milliseconds.

export type DurationResult = { kind: 'ok'; ms: number } | { kind: 'error'; message: string };

/** Node timers overflow past 2^31-1 ms (about 24.8 days), so nothing longer is accepted. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const WHOLE = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$/;
const PART = /([0-9]+)(?:\.([0-9]+))?(ms|s|m|h)/g;

/**
 * Parses a duration string: one or more number+unit parts (units ms, s, m, h), decimals allowed
 * ("1.5s"), summed. The total must be a whole number of milliseconds and at most MAX_DURATION_MS.
 */
export function parseDuration(text: string): DurationResult {
  const err = (message: string): DurationResult => ({ kind: 'error', message });
  if (!WHOLE.test(text)) {
    if (/^[0-9]+(\.[0-9]+)?$/.test(text)) return err(`"${text}" needs a unit, like "${text}s"`);
    return err(`"${text}" is not a duration; write a number and a unit (ms, s, m, h), like "5s" or "1m30s"`);
  }
  let total = 0;
  for (const m of text.matchAll(PART)) {
    const whole = m[1]!;
    const frac = m[2] ?? '';
    const unit = UNIT_MS[m[3]!]!;
    // Integer arithmetic on the digits so "1.1s" is exactly 1100, not 1100.0000000000002.
    if (whole.length + frac.length > 15) return err(`"${text}" is too long; the most is "596h"`);
    const scaled = Number(whole + frac) * unit;
    const div = 10 ** frac.length;
    if (scaled % div !== 0) return err(`"${text}" is not a whole number of milliseconds`);
    total += scaled / div;
    if (total > MAX_DURATION_MS) return err(`"${text}" is too long; the most is "596h"`);
  }
  return { kind: 'ok', ms: total };
}

/** The shortest canonical text for a whole number of milliseconds, e.g. 90000 → "1m30s"; parseDuration inverts it. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}
