/**
 * `tide export grafana`: a dashboard for the same metrics the alert rules watch: replicas,
 * CPU, memory, the queue (waiting jobs, the oldest one's age, arrivals and completions, job
 * run time) and the API (request rate, latency percentiles, error rate). Panels are
 * `timeseries` with PromQL targets on a `datasource` variable, so the file imports into any
 * Grafana with a Prometheus data source. Each service's series read what its alert rules read
 * (its sources' queries where it has them), one line per service.
 */
import type { TideConfig } from '../config/schema.js';
import type { ExportOptions, ExportResult } from './types.js';
import { oldestAgeThreshold, type ServiceSignals, serviceSignals } from './prometheus.js';
import { scrapedJobs, scrapedServices } from './scrape.js';
import { labelMatch, promJob } from './workload.js';

type Obj = Record<string, unknown>;

/** Grafana's dashboard JSON schema version the file is written in (Grafana 10.x/11.x). */
export const SCHEMA_VERSION = 39;

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

interface PanelSpec {
  title: string;
  unit: string;
  targets: Array<{ expr: string; legend: string }>;
  /** A red line at this value (an alert threshold). */
  threshold?: number;
}

function panel(spec: PanelSpec, id: number): Obj {
  const x = ((id - 1) % 2) * 12;
  const y = Math.floor((id - 1) / 2) * 8;
  return {
    id,
    type: 'timeseries',
    title: spec.title,
    datasource: DATASOURCE,
    gridPos: { h: 8, w: 12, x, y },
    fieldConfig: {
      defaults: {
        unit: spec.unit,
        ...(spec.threshold !== undefined
          ? { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: spec.threshold }] }, custom: { thresholdsStyle: { mode: 'line' } } }
          : {}),
      },
      overrides: [],
    },
    options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'none' } },
    targets: spec.targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), datasource: DATASOURCE, expr: t.expr, legendFormat: t.legend })),
  };
}

/** The dashboard JSON of the project. */
export function exportGrafana(config: TideConfig, options: ExportOptions): ExportResult {
  const services = Object.values(config.services).map((s) => ({ service: s, signal: serviceSignals(config, s, options) }));
  const per = (pick: (x: ServiceSignals) => string | undefined) =>
    services.flatMap(({ service, signal }) => {
      const expr = pick(signal);
      return expr ? [{ expr, legend: service.name }] : [];
    });
  const http = services.filter(({ signal }) => signal.http);
  // the builtin queue's own series exist when an API serves it or a worker reads it
  const builtin = services.some(({ service }) => service.kind === 'api' || (service.kind === 'worker' && (!service.sources || Object.values(service.sources).some((x) => x.kind === 'builtin'))));
  const workers = services.filter(({ signal }) => signal.oldestAge).map(({ service }) => oldestAgeThreshold(service));

  const specs: PanelSpec[] = [];
  if (scrapedServices(config).length) specs.push({ title: 'Replicas up', unit: 'short', targets: [{ expr: `count by (job) (up{${scrapedJobs(config)}} == 1)`, legend: '{{job}}' }] });
  const cpu = per((x) => x.cpu);
  if (cpu.length) specs.push({ title: 'CPU (fraction of a core, or of the limit)', unit: 'percentunit', targets: cpu, threshold: 0.7 });
  const memory = per((x) => x.memory);
  if (memory.length) specs.push({ title: 'Memory (fraction of the limit)', unit: 'percentunit', targets: memory, threshold: 0.8 });
  const depth = per((x) => x.queueDepth);
  if (depth.length) specs.push({ title: 'Jobs waiting', unit: 'short', targets: depth, threshold: 1000 });
  const age = per((x) => x.oldestAge);
  if (age.length) specs.push({ title: 'Oldest waiting job', unit: 's', targets: age, threshold: Math.min(...workers) });
  if (builtin) {
    specs.push(
      {
        title: 'Arrivals and completions (Tidescale queue)',
        unit: 'reqps',
        targets: [
          { expr: 'max by (queue) (rate(tide_queue_arrivals_total[2m]))', legend: 'arrivals {{queue}}' },
          { expr: 'max by (queue) (rate(tide_queue_completions_total[2m]))', legend: 'completions {{queue}}' },
          { expr: 'max by (queue) (rate(tide_queue_failures_total[2m]))', legend: 'failures {{queue}}' },
        ],
      },
      {
        title: 'Job run time (mean)',
        unit: 's',
        targets: [{ expr: 'max by (queue) (rate(tide_job_service_time_seconds_sum[5m])) / max by (queue) (rate(tide_job_service_time_seconds_count[5m]))', legend: '{{queue}}' }],
      },
    );
  }
  if (http.length) {
    const match = labelMatch('job', http.map(({ service }) => promJob(config, service.name)));
    specs.push(
      { title: 'API requests', unit: 'reqps', targets: [{ expr: `sum by (job, status_code) (rate(http_request_duration_seconds_count{${match}}[2m]))`, legend: '{{job}} {{status_code}}' }] },
      {
        title: 'API latency',
        unit: 's',
        targets: [0.5, 0.95, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (job, le) (rate(http_request_duration_seconds_bucket{${match}}[5m])))`,
          legend: `{{job}} p${Math.round(q * 100)}`,
        })),
        threshold: 0.5,
      },
      {
        title: 'API error rate (5xx)',
        unit: 'percentunit',
        targets: [{ expr: `sum by (job) (rate(http_request_duration_seconds_count{${match},status_code=~"5.."}[5m])) / sum by (job) (rate(http_request_duration_seconds_count{${match}}[5m]))`, legend: '{{job}}' }],
        threshold: 0.05,
      },
    );
  }
  const p95 = per((x) => x.p95);
  if (p95.length) specs.push({ title: 'Latency p95 (from the sources)', unit: 's', targets: p95, threshold: 0.5 });
  const body: Obj = {
    title: `Tidescale: ${config.project}`,
    uid: `tide-${config.project}`.toLowerCase().slice(0, 40),
    tags: ['tidescale'],
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    editable: true,
    timezone: 'browser',
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: {
      list: [{ name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', refresh: 1, hide: 0, current: {} }],
    },
    annotations: { list: [] },
    panels: specs.map((s, i) => panel(s, i + 1)),
  };
  return { documents: [{ body }], notes: [] };
}
