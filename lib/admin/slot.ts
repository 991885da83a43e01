// Keeps the admin endpoint in step with the config: a reload that moves it binds the new address before closing the old.
import type net from 'node:net';
import type { Config, Endpoint } from '../config/types.js';
import type { Logger } from '../log.js';
import type { PreparedChange, ReloadPart } from '../ops/reload.js';

/** What the slot needs of an admin server (lib/admin/server.ts). */
export interface AdminEndpoint {
  readonly endpoint: Endpoint;
  listen(): Promise<net.AddressInfo>;
  close(): Promise<void>;
  setDraining(): void;
}

export class AdminSlot implements ReloadPart {
  readonly name = 'admin';

  /**
   * create: a server for an address, or undefined when none can be made now (metrics are only
   * collected when [admin] was set at start).
   */
  constructor(
    public current: AdminEndpoint | undefined,
    private readonly create: (e: Endpoint) => AdminEndpoint | undefined,
    private readonly log: Logger,
  ) {}

  async prepare(next: Config): Promise<PreparedChange | undefined> {
    const want = next.admin?.listen;
    const old = this.current;
    if (want?.text === old?.endpoint.text) return undefined;
    if (want === undefined) {
      return {
        commit: async () => {
          this.current = undefined;
          this.log.info({ admin: old!.endpoint.text }, 'admin endpoint closed');
          await old!.close();
        },
        rollback: () => {},
      };
    }
    const fresh = this.create(want);
    if (fresh === undefined) {
      this.log.warn(
        { admin: want.text },
        '[admin] added: it takes effect when sni-mux is restarted, not on reload (metrics are collected from start)',
      );
      return undefined;
    }
    // Throws "cannot listen on admin address …": the reload fails and the old endpoint stays.
    const bound = await fresh.listen();
    return {
      commit: async () => {
        this.current = fresh;
        this.log.info(
          { admin: { config: want.text, address: bound.address, port: bound.port }, was: old?.endpoint.text },
          'admin endpoint moved',
        );
        await old?.close();
      },
      rollback: () => fresh.close(),
    };
  }

  /** Shutdown started: /healthz answers 503 from now on. */
  setDraining(): void {
    this.current?.setDraining();
  }
}
