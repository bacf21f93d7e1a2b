// The dashboard's live charts: one uPlot chart per metric, its lines derived from the latest
// snapshot (a service or queue that appears adds a line: the chart is rebuilt), its data from
// every snapshot kept. Plain ES module, no build step: uPlot's own ESM file is served as is.
import uPlot from './vendor/uPlot.esm.js';

const PALETTE = ['#1f6feb', '#e8590c', '#2f9e44', '#ae3ec9', '#f59f00', '#0c8599', '#d6336c', '#5c7cfa'];

const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

/** Enough decimals to tell ticks `incr` apart (0.05 -> 2), at most 3. */
const tickDigits = (incr) => Math.max(0, Math.min(3, -Math.floor(Math.log10(incr) + 1e-9)));

const byName = (list, key, name) => list.find((x) => x[key] === name);
const fixed = (digits) => (v) => (v == null ? '-' : v.toFixed(digits));

/** What each chart draws: its lines for a snapshot, and how a value reads. */
export const CHART_DEFS = [
  {
    key: 'replicas',
    title: 'Replicas: ready (solid) and desired (dashed)',
    format: fixed(0),
    counts: true,
    lines: (s) =>
      s.services.flatMap((svc) => [
        { id: `${svc.name}:ready`, label: `${svc.name} ready`, group: svc.name, pick: (x) => byName(x.services, 'name', svc.name)?.ready },
        { id: `${svc.name}:desired`, label: `${svc.name} desired`, group: svc.name, dash: true, pick: (x) => byName(x.services, 'name', svc.name)?.desired },
      ]),
  },
  {
    key: 'depth',
    title: 'Queue depth (jobs waiting)',
    format: fixed(0),
    counts: true,
    lines: (s) => s.queues.map((q) => ({ id: q.queue, label: q.queue, group: q.queue, pick: (x) => byName(x.queues, 'queue', q.queue)?.depth })),
  },
  {
    key: 'age',
    title: 'Oldest waiting job (s)',
    format: fixed(1),
    lines: (s) => s.queues.map((q) => ({ id: q.queue, label: q.queue, group: q.queue, pick: (x) => byName(x.queues, 'queue', q.queue)?.oldestAgeSeconds })),
  },
  {
    key: 'jobs',
    title: 'Jobs completed per second',
    format: fixed(1),
    lines: (s) => s.queues.map((q) => ({ id: q.queue, label: q.queue, group: q.queue, pick: (x) => byName(x.queues, 'queue', q.queue)?.jobsPerSecond })),
  },
  {
    key: 'p95',
    title: 'API p95 response time (ms)',
    format: fixed(1),
    lines: (s) => (s.api ? [{ id: 'p95', label: 'p95', group: 'api', pick: (x) => (x.api?.p95Seconds == null ? null : x.api.p95Seconds * 1000) }] : []),
  },
  {
    key: 'errors',
    title: 'API error rate (%)',
    format: fixed(2),
    lines: (s) => (s.api ? [{ id: 'errors', label: 'errors', group: 'api', pick: (x) => (x.api?.errorRate == null ? null : x.api.errorRate * 100) }] : []),
  },
];

/** The charts in a container; `instances` maps a chart key to its uPlot (the e2e test reads it). */
export class Charts {
  constructor(container) {
    this.container = container;
    this.instances = {};
    this.built = {};
    this.colours = new Map();
    window.addEventListener('resize', () => {
      for (const key of Object.keys(this.instances)) this.instances[key].setSize(this.size(this.built[key].box));
    });
  }

  colour(group) {
    if (!this.colours.has(group)) this.colours.set(group, PALETTE[this.colours.size % PALETTE.length]);
    return this.colours.get(group);
  }

  size(box) {
    return { width: Math.max(240, box.clientWidth - 8), height: 180 };
  }

  /** Redraws every chart from the snapshots (oldest first). */
  update(snapshots) {
    const latest = snapshots[snapshots.length - 1];
    if (!latest) return;
    const xs = snapshots.map((s) => s.at / 1000);
    for (const def of CHART_DEFS) {
      const lines = def.lines(latest);
      if (lines.length === 0) continue;
      const data = [xs, ...lines.map((l) => snapshots.map((s) => l.pick(s) ?? null))];
      const signature = lines.map((l) => l.id).join('\n');
      const built = this.built[def.key];
      if (built && built.signature === signature) {
        this.instances[def.key].setData(data);
        continue;
      }
      this.build(def, lines, signature, data);
    }
  }

  build(def, lines, signature, data) {
    let built = this.built[def.key];
    if (built) {
      this.instances[def.key].destroy();
    } else {
      const box = document.createElement('div');
      box.className = 'chart';
      box.dataset.chart = def.key;
      const title = document.createElement('h3');
      title.textContent = def.title;
      const plot = document.createElement('div');
      box.append(title, plot);
      this.container.append(box);
      built = { box, plot };
      this.built[def.key] = built;
    }
    built.signature = signature;
    const opts = {
      ...this.size(built.box),
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
      // whole things (replicas, jobs) get whole-number ticks
      axes: [{}, { size: 56, values: (u, ticks, axis, space, incr) => ticks.map((v) => v.toFixed(tickDigits(incr))), ...(def.counts ? { incrs: COUNT_STEPS } : {}) }],
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: this.colour(l.group),
          width: 2,
          ...(l.dash ? { dash: [6, 4] } : {}),
          value: (u, v) => def.format(v),
        })),
      ],
    };
    this.instances[def.key] = new uPlot(opts, data, built.plot);
  }
}
