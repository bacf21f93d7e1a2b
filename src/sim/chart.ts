/**
 * A hand-written SVG chart of one scenario: arrivals per minute, replicas paid for per policy,
 * and the p95 wait of the jobs arriving in each bucket per policy (with the SLO's wait as a
 * dashed line). No dependency: a few paths and text elements.
 */
import type { PolicyRun } from './run.js';
import type { Scenario } from './scenario.js';

// tableau10: distinct at a glance; the first (tide, when run) is drawn thicker (the family chart colours its shapes with it)
export const COLORS = ['#1f77b4', '#d62728', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#7f7f7f', '#e377c2', '#17becf', '#bcbd22'];
const WIDTH = 1000;
const LEFT = 70;
const RIGHT = 170;
const PANEL = 190;
const GAP = 50;
const TOP = 40;

/** A bucket width for a trace of this length: about 150-300 points, at least one step. */
export function chartBucketSeconds(traceSeconds: number, stepSeconds: number): number {
  const candidates = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  const want = traceSeconds / 300;
  const pick = candidates.find((c) => c >= want) ?? 3600;
  return Math.max(pick, stepSeconds);
}

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** 1, 2 or 5 times a power of ten, giving about `count` ticks up to `max`. */
function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function fmtTick(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toPrecision(3).replace(/\.?0+$/, '')}M`;
  if (v >= 1e3) return `${(v / 1e3).toPrecision(3).replace(/\.?0+$/, '')}k`;
  return String(Number(v.toPrecision(3)));
}

function timeTicks(seconds: number): { step: number; unit: string; div: number } {
  if (seconds <= 1800) return { step: 300, unit: 'min', div: 60 };
  if (seconds <= 4 * 3600) return { step: 900, unit: 'min', div: 60 };
  if (seconds <= 12 * 3600) return { step: 3600, unit: 'h', div: 3600 };
  return { step: 3 * 3600, unit: 'h', div: 3600 };
}

interface Panel {
  title: string;
  y0: number;
  max: number;
}

/** Renders the chart. Every run must carry a series with the same bucket width. */
export function renderChart(scenario: Scenario, runs: PolicyRun[]): string {
  const withSeries = runs.filter((r) => r.result.series);
  const first = withSeries[0]?.result.series;
  const traceSeconds = runs[0]?.result.traceSeconds ?? 0;
  const plotW = WIDTH - LEFT - RIGHT;
  const height = TOP + 4 * PANEL + 3 * GAP + 50;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(`${scenario.name}: SLO ${(scenario.slo.attainment * 100).toFixed(1)}% of jobs start within ${scenario.slo.waitSeconds} s`)}</text>`);
  if (!first) {
    out.push('</svg>');
    return out.join('\n');
  }
  const bucket = first.bucketSeconds;
  const n = first.arrivals.length;
  const x = (t: number): number => LEFT + (t / traceSeconds) * plotW;
  const perMinute = 60 / bucket;

  let maxArr = 0;
  for (const a of first.arrivals) maxArr = Math.max(maxArr, a * perMinute);
  let maxRep = scenario.minReplicas;
  let maxWait = scenario.slo.waitSeconds * 1.5;
  let maxDepth = 1;
  for (const r of withSeries) {
    for (const v of r.result.series!.replicas) maxRep = Math.max(maxRep, v);
    for (const v of r.result.series!.depth) maxDepth = Math.max(maxDepth, v);
    for (const v of r.result.series!.waitP95) if (Number.isFinite(v)) maxWait = Math.max(maxWait, v);
  }
  // a few runaway buckets should not flatten the rest: cap the wait axis at 10x the SLO
  const waitCap = Math.max(scenario.slo.waitSeconds * 10, 1);
  const clipped = maxWait > waitCap;
  if (clipped) maxWait = waitCap;
  const panels: Panel[] = [
    { title: 'arrivals per minute', y0: TOP + 10, max: niceTicks(maxArr).at(-1)! },
    { title: 'replicas paid for (average per bucket)', y0: TOP + 10 + PANEL + GAP, max: niceTicks(maxRep).at(-1)! },
    { title: `p95 wait of arriving jobs, s${clipped ? ` (axis capped at ${fmtTick(waitCap)} s)` : ''}`, y0: TOP + 10 + 2 * (PANEL + GAP), max: niceTicks(maxWait).at(-1)! },
    { title: 'jobs waiting (queue depth, average per bucket)', y0: TOP + 10 + 3 * (PANEL + GAP), max: niceTicks(maxDepth).at(-1)! },
  ];
  const tt = timeTicks(traceSeconds);
  for (const p of panels) {
    const y = (v: number): number => p.y0 + PANEL - (Math.min(v, p.max) / p.max) * PANEL;
    out.push(`<text x="${LEFT}" y="${p.y0 - 6}" font-weight="bold">${esc(p.title)}</text>`);
    for (const v of niceTicks(p.max)) {
      if (v > p.max) break;
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmtTick(v)}</text>`);
    }
    for (let t = 0; t <= traceSeconds + 1e-9; t += tt.step) {
      out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${p.y0 + PANEL}" y2="${p.y0 + PANEL + 4}" stroke="#555"/>`);
      out.push(`<text x="${x(t).toFixed(1)}" y="${p.y0 + PANEL + 16}" text-anchor="middle" fill="#555">${fmtTick(t / tt.div)}</text>`);
    }
    out.push(`<rect x="${LEFT}" y="${p.y0}" width="${plotW}" height="${PANEL}" fill="none" stroke="#999"/>`);
  }
  out.push(`<text x="${LEFT + plotW / 2}" y="${height - 12}" text-anchor="middle" fill="#333">time, ${tt.unit} (buckets of ${bucket} s)</text>`);

  // arrivals: a filled step area
  {
    const p = panels[0]!;
    const y = (v: number): number => p.y0 + PANEL - (Math.min(v, p.max) / p.max) * PANEL;
    let d = `M${x(0).toFixed(1)},${y(0).toFixed(1)}`;
    for (let b = 0; b < n; b++) {
      const v = first.arrivals[b]! * perMinute;
      d += `L${x(b * bucket).toFixed(1)},${y(v).toFixed(1)}L${x(Math.min(traceSeconds, (b + 1) * bucket)).toFixed(1)},${y(v).toFixed(1)}`;
    }
    d += `L${x(traceSeconds).toFixed(1)},${y(0).toFixed(1)}Z`;
    out.push(`<path d="${d}" fill="#9db4cc" stroke="#4a6f94" stroke-width="0.8"/>`);
  }
  // replicas and p95 wait: one line per policy
  withSeries.forEach((run, i) => {
    const color = COLORS[i % COLORS.length]!;
    const s = run.result.series!;
    for (const [panel, values] of [
      [panels[1]!, s.replicas],
      [panels[2]!, s.waitP95],
      [panels[3]!, s.depth],
    ] as const) {
      const y = (v: number): number => panel.y0 + PANEL - (Math.min(v, panel.max) / panel.max) * PANEL;
      let d = '';
      let pen = false;
      for (let b = 0; b < values.length; b++) {
        const v = values[b]!;
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        const px = x((b + 0.5) * bucket).toFixed(1);
        d += `${pen ? 'L' : 'M'}${px},${y(v).toFixed(1)}`;
        pen = true;
      }
      const width = run.result.policy === 'tide' ? 2.4 : 1.3;
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round" opacity="0.9"/>`);
    }
    const ly = panels[1]!.y0 + 10 + i * 18;
    out.push(`<line x1="${LEFT + plotW + 14}" x2="${LEFT + plotW + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${LEFT + plotW + 42}" y="${ly + 4}">${esc(run.result.policy)}</text>`);
  });
  // the SLO's wait
  {
    const p = panels[2]!;
    const yv = p.y0 + PANEL - (scenario.slo.waitSeconds / p.max) * PANEL;
    out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${yv.toFixed(1)}" y2="${yv.toFixed(1)}" stroke="#000" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${LEFT + plotW + 6}" y="${(yv + 4).toFixed(1)}">SLO ${scenario.slo.waitSeconds} s</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}
