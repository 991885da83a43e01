// The status page's refusal window, with an explicit clock: counts stay for 5 minutes, then leave.
import t from 'tap';
import { REJECT_REASONS } from '../lib/reasons.js';
import { RECENT_WINDOW_S, RecentRejections } from '../lib/status/tally.js';

const WINDOW_MS = RECENT_WINDOW_S * 1000;

t.test('refusals count for the window, per reason, then drop out step by step', async (t) => {
  const r = new RecentRejections();
  const start = 1_000_000;
  t.same(Object.keys(r.sums(start)), [...REJECT_REASONS], 'every reason, from the start');
  r.add('no_route', start);
  r.add('no_route', start + 5_000);
  r.add('limit', start + 60_000);
  t.match(r.sums(start + 60_000), { no_route: 2, limit: 1, bad_hello: 0 });
  t.match(r.sums(start + WINDOW_MS - 20_000), { no_route: 2, limit: 1 }, 'still inside the window');
  t.match(r.sums(start + WINDOW_MS + 10_000), { no_route: 0, limit: 1 }, 'the first ones have left');
  t.match(r.sums(start + 60_000 + WINDOW_MS + 10_000), { limit: 0 }, 'and the last');
  r.add('limit', start + 10 * WINDOW_MS);
  t.match(r.sums(start + 10 * WINDOW_MS), { limit: 1, no_route: 0 }, 'a long silence clears every step once');
});
