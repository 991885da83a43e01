// Block coverage of lib/ from V8 (node:inspector precise coverage): the "guided" in coverage-guided.
import { Session } from 'node:inspector';

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface ScriptCoverage {
  url: string;
  functions: { ranges: Range[] }[];
}

/**
 * Collects, after each run, the blocks of lib/ that ran and how often (bucketed like AFL: 0, 1, 2, 3,
 * 4-7, 8-15, 16-31, 32-127, 128+), and says whether any (block, bucket) pair is new.
 */
export class Coverage {
  private readonly session = new Session();
  private readonly seen = new Set<string>();

  constructor(private readonly include: string) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Distinct (block, count bucket) pairs seen so far. */
  get features(): number {
    return this.seen.size;
  }

  /** Forgets counts from code that ran outside a target (setup, the harness itself). */
  reset(): void {
    this.post('Profiler.takePreciseCoverage');
  }

  /** Counts new pairs since the last call; resets V8's counters. */
  collect(): number {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    let fresh = 0;
    for (const script of result) {
      if (!script.url.includes(this.include)) continue;
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          const key = `${script.url}:${r.startOffset}:${r.endOffset}:${bucket(r.count)}`;
          if (!this.seen.has(key)) {
            this.seen.add(key);
            fresh++;
          }
        }
      }
    }
    return fresh;
  }

  /**
   * Where the code under test ran since the last call, per script: sorted, disjoint [start, end) source
   * offsets. Unlike collect(), plain coverage (ran or not), the thing a coverage report counts.
   */
  covered(): Map<string, [number, number][]> {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    const out = new Map<string, [number, number][]>();
    for (const script of result) {
      if (!script.url.includes(this.include)) continue;
      const segments = ranSegments(script.functions.flatMap((fn) => fn.ranges));
      if (segments.length > 0) out.set(script.url, segments);
    }
    return out;
  }

  stop(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }

  /** Same-thread inspector sessions answer synchronously; a missing answer is a bug here, not a finding. */
  private post(method: string, params: object = {}): unknown {
    let answer: unknown;
    let error: Error | null = null;
    let answered = false;
    this.session.post(method, params, (err, res) => {
      error = err;
      answer = res;
      answered = true;
    });
    if (!answered) throw new Error(`inspector ${method} did not answer synchronously`);
    if (error !== null) throw error;
    return answer;
  }
}

function bucket(count: number): number {
  if (count < 4) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

/**
 * Flattens V8's nested ranges (a block's count overrides its enclosing function's or block's) into the
 * disjoint segments whose innermost count is above zero.
 */
function ranSegments(ranges: Range[]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
  const out: [number, number][] = [];
  const open: Range[] = [];
  let pos = 0;
  const upTo = (to: number): void => {
    const inner = open[open.length - 1];
    if (inner !== undefined && inner.count > 0 && to > pos) {
      const last = out[out.length - 1];
      if (last !== undefined && last[1] === pos) last[1] = to;
      else out.push([pos, to]);
    }
    if (to > pos) pos = to;
  };
  const close = (): void => {
    upTo(open[open.length - 1]!.endOffset);
    open.pop();
  };
  for (const r of sorted) {
    while (open.length > 0 && open[open.length - 1]!.endOffset <= r.startOffset) close();
    upTo(r.startOffset);
    open.push(r);
  }
  while (open.length > 0) close();
  return out;
}
