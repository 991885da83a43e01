// Dropping root: the configured user and group are looked up before anything is bound, switched to after.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';

/** A passwd or group entry: name, numeric id and (for users) primary group. */
export interface Account {
  name: string;
  id: number;
  /** Primary group id; for a group entry, the same as id. */
  gid: number;
}

/** Who to become after binding. */
export interface Identity {
  user: Account | undefined;
  group: Account;
}

export type IdentityResult =
  | { kind: 'none' }
  | { kind: 'switch'; identity: Identity }
  /** Already running as the configured user and group (e.g. systemd's User=): nothing to do. */
  | { kind: 'already'; identity: Identity }
  | { kind: 'error'; message: string };

/** Looks a name (or numeric id) up in a database: "passwd" or "group". */
export type Lookup = (db: 'passwd' | 'group', key: string) => Account | undefined;

/** One line of /etc/passwd or /etc/group (or `getent` output) for `key`, by name or numeric id. Pure. */
export function parseAccount(db: 'passwd' | 'group', text: string, key: string): Account | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < (db === 'passwd' ? 7 : 4)) continue;
    const id = Number(f[2]);
    const gid = db === 'passwd' ? Number(f[3]) : id;
    if (f[2] === '' || (db === 'passwd' && f[3] === '') || !Number.isInteger(id) || !Number.isInteger(gid))
      continue;
    if (f[0] === key || (/^[0-9]+$/.test(key) && id === Number(key))) return { name: f[0]!, id, gid };
  }
  return undefined;
}

/** getent, so NSS users (LDAP, systemd's DynamicUser) are found; the plain files where it is missing. */
export const systemLookup: Lookup = (db, key) => {
  try {
    const out = execFileSync('getent', [db, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return parseAccount(db, out, key);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number };
    if (e.code !== 'ENOENT') return undefined; // getent ran: exit 2 means "no such entry"
    try {
      return parseAccount(db, readFileSync(`/etc/${db}`, 'utf8'), key);
    } catch {
      return undefined;
    }
  }
};

export interface ProcessIds {
  euid: number;
  egid: number;
}

function currentIds(): ProcessIds | undefined {
  if (process.geteuid === undefined || process.getegid === undefined) return undefined;
  return { euid: process.geteuid(), egid: process.getegid() };
}

/**
 * Decides, before anything is bound, whom to become: so a typo in `user` or a missing root is
 * reported at once, not after the ports are taken.
 */
export function resolveIdentity(
  config: Pick<Config, 'user' | 'group'>,
  lookup: Lookup = systemLookup,
  ids: ProcessIds | undefined = currentIds(),
): IdentityResult {
  if (config.user === undefined && config.group === undefined) return { kind: 'none' };
  if (ids === undefined)
    return { kind: 'error', message: 'user and group are not supported on this platform' };
  let user: Account | undefined;
  if (config.user !== undefined) {
    user = lookup('passwd', config.user);
    if (user === undefined) {
      return {
        kind: 'error',
        message:
          `user "${config.user}" does not exist; create it (useradd --system --no-create-home ` +
          `--shell /usr/sbin/nologin ${config.user}) or set user to an existing one`,
      };
    }
  }
  let group: Account | undefined;
  if (config.group !== undefined) {
    group = lookup('group', config.group);
    if (group === undefined) {
      return {
        kind: 'error',
        message: `group "${config.group}" does not exist; create it (groupadd --system ${config.group}) or set group to an existing one`,
      };
    }
  } else {
    // Without `group`, the user's primary group, as su and nginx do.
    const gid = user!.gid;
    group = lookup('group', String(gid)) ?? { name: String(gid), id: gid, gid };
  }
  const identity: Identity = { user, group };
  if ((user === undefined || user.id === ids.euid) && group.id === ids.egid) {
    return { kind: 'already', identity };
  }
  if (ids.euid !== 0) {
    const wanted = [config.user && `user = "${config.user}"`, config.group && `group = "${config.group}"`]
      .filter(Boolean)
      .join(' and ');
    return {
      kind: 'error',
      message:
        `${wanted} is set, but sni-mux runs as uid ${ids.euid}, not root, so it cannot switch to them; ` +
        'start it as root, or remove user and group (to bind ports below 1024 without root, ' +
        'give it CAP_NET_BIND_SERVICE: see docs/operations.md)',
    };
  }
  return { kind: 'switch', identity };
}

/**
 * Becomes the resolved user and group: supplementary groups first (the user's, as nginx does), then
 * the group, then the user; then checks that root cannot be regained. Throws with what failed.
 */
export function dropPrivileges(identity: Identity): void {
  const { user, group } = identity;
  // process.initgroups exists on POSIX but is missing from @types/node.
  const p = process as NodeJS.Process & { initgroups?: (user: string, extraGroup: number) => void };
  if (p.setgid === undefined || p.setuid === undefined || p.setgroups === undefined) {
    throw new Error('cannot drop privileges: not supported on this platform');
  }
  const step = (what: string, f: () => void): void => {
    try {
      f();
    } catch (err) {
      throw new Error(`cannot drop privileges: ${what}: ${(err as Error).message}`, { cause: err });
    }
  };
  if (user !== undefined && p.initgroups !== undefined) {
    step(`initgroups(${user.name}, ${group.name})`, () => p.initgroups!(user.name, group.id));
  } else {
    step(`setgroups([${group.name}])`, () => p.setgroups!([group.id]));
  }
  step(`setgid(${group.name})`, () => p.setgid!(group.id));
  if (user === undefined) return;
  step(`setuid(${user.name})`, () => p.setuid!(user.id));
  if (user.id === 0) return;
  let regained = false;
  try {
    p.setuid!(0);
    regained = true;
  } catch {
    // Expected: an unprivileged process cannot become root again.
  }
  if (regained || p.geteuid!() !== user.id || p.getegid!() !== group.id) {
    throw new Error(`cannot drop privileges: still able to act as root after setuid(${user.name})`);
  }
}
