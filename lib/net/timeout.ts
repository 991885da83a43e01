// Timeouts that judge only after the I/O already there has been read.

/**
 * Like setTimeout(fn, ms, a, b), but `fn` runs in the check phase of the loop turn in which the timer
 * expired, after that turn's I/O. Node runs timers before polling for I/O, so on a loaded process a
 * timer can expire in the same turn as the bytes or the connect it waits for: the detect timeout then
 * refused clients whose hello had already arrived (the soak saw it at load 14). HAProxy reads before it
 * judges a timeout; this does the same. `fn` may run after the event it guards, so it checks its state,
 * and clearTimeout stops it only before it expires.
 */
export function timeoutAfterIo<A, B>(fn: (a: A, b: B) => void, ms: number, a: A, b: B): NodeJS.Timeout {
  return setTimeout(afterIo, ms, fn, a, b);
}

function afterIo<A, B>(fn: (a: A, b: B) => void, a: A, b: B): void {
  setImmediate(fn, a, b);
}
