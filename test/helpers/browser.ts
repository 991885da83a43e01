// A real headless Chromium for tests, driven over the Chrome DevTools Protocol on a pipe (no websocket,
// no puppeteer): open a page, evaluate in it, wait for DOM conditions, take screenshots, collect errors.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Test } from 'tap';
import { findProgram } from './programs.js';

/** Chromium under the names Debian and others give it; undefined when none is installed. */
export function findChromium(): string | undefined {
  return findProgram('chromium') ?? findProgram('chromium-browser') ?? findProgram('google-chrome');
}

type Json = Record<string, unknown>;

interface Pending {
  resolve(v: Json): void;
  reject(e: Error): void;
  method: string;
}

export interface Page {
  /** Navigates and resolves once the load event fired. */
  goto(url: string): Promise<void>;
  /** Evaluates an expression (awaiting a promise it returns) and gives back its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /**
   * Resolves once `predicate` (a JS expression over the page) is true, checked now and on every DOM
   * change: an event, not a sleep. The test's own timeout bounds it.
   */
  waitFor(predicate: string): Promise<void>;
  /** Sets the viewport (CSS pixels) and device scale, as a phone or a desktop would have it. */
  viewport(width: number, height: number, scale?: number, mobile?: boolean): Promise<void>;
  /** A PNG of the whole page. */
  screenshot(): Promise<Buffer>;
  /** Console errors, uncaught exceptions, failed loads and CSP violations seen so far. */
  readonly errors: string[];
}

/** Headless, no sandbox (containers), no network chatter of its own: every Chromium run in the tests. */
export const CHROMIUM_QUIET = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The flags every page run uses. */
const FLAGS = [
  ...CHROMIUM_QUIET,
  '--disable-quic',
  '--disable-extensions',
  '--disable-default-apps',
  '--mute-audio',
  '--remote-debugging-pipe',
  'about:blank',
];

/** Starts Chromium with a fresh profile; the test's teardown kills it and removes the profile. */
export async function launchBrowser(t: Test, executable: string): Promise<{ newPage(): Promise<Page> }> {
  const profile = mkdtempSync(join(tmpdir(), 'snimux-chromium-'));
  // fd 3: commands to Chromium, fd 4: its answers and events, each message ending in a NUL byte.
  const proc: ChildProcess = spawn(executable, [...FLAGS, `--user-data-dir=${profile}`], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  t.teardown(async () => {
    // Browser.close lets Chromium stop its own helper processes; a kill is the fallback.
    if (proc.exitCode === null && proc.signalCode === null) {
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      send('Browser.close').catch(() => proc.kill('SIGKILL'));
      await exited;
      clearTimeout(kill);
    }
    rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  });
  const input = proc.stdio[3] as Writable;
  const output = proc.stdio[4] as Readable;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Set<(method: string, params: Json, session: string | undefined) => void>();
  let buffered = '';
  output.setEncoding('utf8');
  output.on('data', (chunk: string) => {
    buffered += chunk;
    let end = buffered.indexOf('\0');
    while (end !== -1) {
      const msg = JSON.parse(buffered.slice(0, end)) as Json;
      buffered = buffered.slice(end + 1);
      end = buffered.indexOf('\0');
      if (typeof msg.id === 'number') {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (p === undefined) continue;
        if (msg.error !== undefined) p.reject(new Error(`${p.method}: ${JSON.stringify(msg.error)}`));
        else p.resolve((msg.result ?? {}) as Json);
      } else if (typeof msg.method === 'string') {
        for (const l of listeners) l(msg.method, (msg.params ?? {}) as Json, msg.sessionId as string);
      }
    }
  });
  input.on('error', () => {});
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error(`chromium exited during ${p.method}:\n${stderr}`));
    pending.clear();
  });

  const send = (method: string, params: Json = {}, sessionId?: string): Promise<Json> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });

  // The first answer proves the pipe works (and that Chromium started at all).
  await send('Browser.getVersion');

  return {
    async newPage(): Promise<Page> {
      const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as {
        targetId: string;
      };
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as {
        sessionId: string;
      };
      const on = (m: string, p: Json = {}): Promise<Json> => send(m, p, sessionId);
      const errors: string[] = [];
      let loaded: (() => void) | undefined;
      listeners.add((method, params, session) => {
        if (session !== sessionId) return;
        if (method === 'Page.loadEventFired') loaded?.();
        else if (method === 'Runtime.exceptionThrown') {
          const d = params.exceptionDetails as Json;
          errors.push(`exception: ${JSON.stringify((d.exception as Json)?.description ?? d.text)}`);
        } else if (method === 'Runtime.consoleAPICalled' && params.type === 'error') {
          errors.push(`console.error: ${JSON.stringify(params.args)}`);
        } else if (method === 'Log.entryAdded') {
          const e = params.entry as Json;
          if (e.level === 'error') errors.push(`${e.source}: ${e.text} ${e.url ?? ''}`);
        }
      });
      await on('Page.enable');
      await on('Runtime.enable');
      await on('Log.enable');
      const evaluate = async <T>(expression: string): Promise<T> => {
        const r = (await on('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
          result: { value?: T };
          exceptionDetails?: Json;
        };
        if (r.exceptionDetails !== undefined) {
          throw new Error(`evaluate ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
        }
        return r.result.value as T;
      };
      return {
        errors,
        async goto(url) {
          const load = new Promise<void>((resolve) => {
            loaded = resolve;
          });
          const r = (await on('Page.navigate', { url })) as { errorText?: string };
          if (r.errorText !== undefined) throw new Error(`cannot load ${url}: ${r.errorText}`);
          await load;
        },
        evaluate,
        async waitFor(predicate) {
          await evaluate(`new Promise((resolve) => {
            const test = () => { try { return Boolean(${predicate}); } catch { return false; } };
            if (test()) return resolve(true);
            const mo = new MutationObserver(() => { if (test()) { mo.disconnect(); resolve(true); } });
            mo.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
          })`);
        },
        async viewport(width, height, scale = 1, mobile = false) {
          await on('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: scale, mobile });
        },
        async screenshot() {
          const { cssContentSize: size } = (await on('Page.getLayoutMetrics')) as {
            cssContentSize: { width: number; height: number };
          };
          const { data } = (await on('Page.captureScreenshot', {
            format: 'png',
            captureBeyondViewport: true,
            clip: { x: 0, y: 0, width: size.width, height: size.height, scale: 1 },
          })) as { data: string };
          return Buffer.from(data, 'base64');
        },
      };
    },
  };
}
