// The CI soak: test/soak/soak.ts for SOAK_SECONDS (default 60, as issue 7 asks) against one sni-mux process.
import t from 'tap';
import { runSoak, soakSeed } from './soak/soak.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 60);
// The load runs for `seconds`; setup, draining and the checks take a few more.
t.setTimeout((seconds + 90) * 1000);

t.test(`${seconds} s of mixed hostile and valid clients leave the mux as it was`, (t) =>
  runSoak(t, { seconds, concurrency: Number(process.env.SOAK_CONCURRENCY ?? 48), seed: soakSeed() }),
);
