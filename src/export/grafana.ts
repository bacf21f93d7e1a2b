/**
 * `tide export grafana`: a dashboard for the same metrics the alert rules watch: replicas,
 * CPU, memory, the queue (waiting jobs, the oldest one's age, arrivals and completions, job
 * run time) and the API (request rate, latency percentiles, error rate). Panels are
 * `timeseries` with PromQL targets on a `datasource` variable, so the file imports into any
 * Grafana with a Prometheus data source.
 */
import type { TideConfig } from '../config/schema.js';
import type { ExportOptions, ExportResult } from './types.js';
import { oldestAgeThreshold } from './prometheus.js';
import { promJob } from './workload.js';

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
export function exportGrafana(config: TideConfig, _options: ExportOptions): ExportResult {
  const services = Object.values(config.services).filter((s) => s.kind !== 'command');
  const jobs = services.map((s) => promJob(config, s.name));
  const jobMatch = `job=~"${jobs.join('|')}"`;
  const apis = services.filter((s) => s.kind === 'api').map((s) => promJob(config, s.name));
  const apiMatch = `job=~"${apis.join('|')}"`;
  const workers = services.filter((s) => s.kind === 'worker');
  const specs: PanelSpec[] = [
    { title: 'Replicas up', unit: 'short', targets: [{ expr: `count by (job) (up{${jobMatch}} == 1)`, legend: '{{job}}' }] },
    { title: 'CPU per replica (fraction of a core)', unit: 'percentunit', targets: [{ expr: `avg by (job) (rate(process_cpu_seconds_total{${jobMatch}}[2m]))`, legend: '{{job}}' }], threshold: 0.7 },
    { title: 'Memory per replica (resident)', unit: 'bytes', targets: [{ expr: `max by (job) (process_resident_memory_bytes{${jobMatch}})`, legend: '{{job}}' }] },
    { title: 'Jobs waiting', unit: 'short', targets: [{ expr: 'max by (queue) (tide_queue_ready)', legend: '{{queue}}' }, { expr: 'sum(max by (queue) (tide_queue_active))', legend: 'running' }], threshold: 1000 },
    {
      title: 'Oldest waiting job',
      unit: 's',
      targets: [{ expr: 'max by (queue) (tide_queue_oldest_ready_age_seconds)', legend: '{{queue}}' }],
      threshold: Math.min(...(workers.length ? workers.map(oldestAgeThreshold) : [300])),
    },
    {
      title: 'Arrivals and completions',
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
  ];
  if (apis.length) {
    specs.push(
      { title: 'API requests', unit: 'reqps', targets: [{ expr: `sum by (status_code) (rate(http_request_duration_seconds_count{${apiMatch}}[2m]))`, legend: '{{status_code}}' }] },
      {
        title: 'API latency',
        unit: 's',
        targets: [0.5, 0.95, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le) (rate(http_request_duration_seconds_bucket{${apiMatch}}[5m])))`,
          legend: `p${Math.round(q * 100)}`,
        })),
        threshold: 0.5,
      },
      {
        title: 'API error rate (5xx)',
        unit: 'percentunit',
        targets: [{ expr: `sum(rate(http_request_duration_seconds_count{${apiMatch},status_code=~"5.."}[5m])) / sum(rate(http_request_duration_seconds_count{${apiMatch}}[5m]))`, legend: '5xx' }],
        threshold: 0.05,
      },
    );
  }
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
