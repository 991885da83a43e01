// Keeps every byte a client sent while detection is undecided, so all of it can be replayed to the backend.

export class PeekBuffer {
  private buf: Uint8Array = EMPTY;
  private owned = false;
  length = 0;

  /** The bytes so far; valid until the next append. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /**
   * Adds a chunk. The first chunk is kept as it is (usually the whole ClientHello arrives in one),
   * later ones are copied into a buffer that doubles as needed.
   */
  append(chunk: Uint8Array): void {
    if (this.length === 0) {
      this.buf = chunk;
      this.length = chunk.length;
      this.owned = false;
      return;
    }
    const need = this.length + chunk.length;
    if (!this.owned || need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.owned ? this.buf.length * 2 : 4096));
      grown.set(this.buf.subarray(0, this.length), 0);
      this.buf = grown;
      this.owned = true;
    }
    this.buf.set(chunk, this.length);
    this.length = need;
  }

  /** Hands the bytes over and forgets them, so an idle relayed connection holds no peek memory. */
  take(): Uint8Array {
    const out = this.view();
    this.buf = EMPTY;
    this.length = 0;
    this.owned = false;
    return out;
  }
}

const EMPTY = new Uint8Array(0);
