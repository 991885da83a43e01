// Binds the listen addresses and hands each accepted client on; keeps the set open across reloads.
import type net from 'node:net';
import type { Endpoint } from '../config/types.js';
import type { AcceptHandler, DataPlane, PlaneListener } from '../dataplane/types.js';

/** The open listening sockets, keyed by the address text as written in the config. */
export class Listeners {
  private readonly servers = new Map<string, PlaneListener>();

  constructor(
    private readonly plane: DataPlane,
    private readonly onAccept: AcceptHandler,
  ) {}

  /** Addresses actually bound (port resolved when the config said 0), keyed by config text. */
  addresses(): Map<string, net.AddressInfo> {
    const out = new Map<string, net.AddressInfo>();
    for (const [text, server] of this.servers) {
      const a = server.address();
      if (a !== null) out.set(text, a);
    }
    return out;
  }

  /**
   * Makes the open set equal to `wanted`: opens new addresses, closes dropped ones, leaves the rest
   * untouched so a reload refuses no connection. Throws with the address and errno if a bind fails,
   * after closing whatever this call opened.
   */
  async update(wanted: readonly Endpoint[]): Promise<void> {
    const keep = new Set(wanted.map((e) => e.text));
    const opened: string[] = [];
    try {
      for (const e of wanted) {
        if (this.servers.has(e.text)) continue;
        this.servers.set(e.text, await this.plane.listen(e, this.onAccept));
        opened.push(e.text);
      }
    } catch (err) {
      for (const text of opened) this.closeOne(text);
      throw err;
    }
    for (const text of [...this.servers.keys()]) if (!keep.has(text)) this.closeOne(text);
  }

  /** Stops accepting on every address; connections already accepted are not touched. */
  closeAll(): void {
    for (const text of [...this.servers.keys()]) this.closeOne(text);
  }

  private closeOne(text: string): void {
    this.servers.get(text)?.close();
    this.servers.delete(text);
  }
}
