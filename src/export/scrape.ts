/**
 * How Prometheus finds the replicas, written so the alert rules and the dashboard find their
 * series: every scraped replica gets `job="<project>-<service>"` (promJob), `service` and
 * `replica` labels, whatever the platform calls its scrape job. One place decides which
 * services are scraped (scrapedServices) and what their labels are (the relabelling below), for
 *
 * - `tide export prometheus-config --platform local`: HTTP service discovery on the control
 *   API of `tide up` (`GET /v1/targets`, the supervisor's own list of replicas and ports);
 * - `--platform compose`: DNS service discovery of each Compose service's name, which Docker's
 *   DNS answers with every replica's address (Prometheus joins the Compose network);
 * - `--platform kubernetes`: pod discovery in the namespace, keeping the pods the Kubernetes
 *   export annotated with `prometheus.io/scrape`;
 * - and for the Prometheus Operator, the PodMonitor objects of `tide export kubernetes
 *   --pod-monitors` (podMonitors), with the same relabelling.
 */
import type { ServiceConfig, TideConfig } from '../config/schema.js';
import { TideError } from '../errors.js';
import type { ExportOptions, ExportResult } from './types.js';
import { containerPort, labelMatch, promJob } from './workload.js';

type Obj = Record<string, unknown>;

/** The platforms `tide export prometheus-config` writes a scrape config for. */
export const SCRAPE_PLATFORMS = ['local', 'compose', 'kubernetes'] as const;
export type ScrapePlatform = (typeof SCRAPE_PLATFORMS)[number];

/** Seconds between scrapes in the exported config; the rules' rates use windows of 2 m and more. */
export const SCRAPE_INTERVAL = '15s';

/**
 * The services whose replicas serve Prometheus /metrics: `api` and `worker` replicas always,
 * a `command` service when it names a `port` (taken to serve /metrics there).
 */
export function scrapedServices(config: TideConfig): ServiceConfig[] {
  return Object.values(config.services).filter((s) => s.kind !== 'command' || s.port !== undefined);
}

/** A regex matching exactly these names (for `keep` relabelling). */
function exactly(names: string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

/**
 * The relabelling shared by every platform, from the label that names the service: keep the
 * project's scraped services, then `job` = `<project>-<service>`, `service`, and `replica`
 * from the label that names the replica.
 */
function relabel(config: TideConfig, serviceLabel: string, replicaLabel: string): Obj[] {
  const names = scrapedServices(config).map((s) => s.name);
  return [
    { source_labels: [serviceLabel], regex: exactly(names), action: 'keep' },
    { source_labels: [serviceLabel], target_label: 'job', replacement: `${config.project}-$1` },
    { source_labels: [serviceLabel], target_label: 'service' },
    { source_labels: [replicaLabel], target_label: 'replica' },
  ];
}

function localJob(config: TideConfig, options: ExportOptions): Obj {
  if (config.control.token) {
    throw new TideError('TIDE_EXPORT_UNSUPPORTED', 'The control API has a token; the exported http_sd config would need it written in. Keep control.host on loopback (no token) to scrape a local tide up, or add `authorization` to the http_sd_configs entry by hand.', {
      where: { file: config.file, field: 'control.token' },
    });
  }
  if (/:0$/.test(options.controlUrl)) {
    throw new TideError('TIDE_EXPORT_UNSUPPORTED', `control.port is 0 (a free port each run), so the control API's address is not known from the config; export while tide up runs (its address is read from ${config.stateDir}/control.json), or pass --control-url.`, {
      where: { file: config.file, field: 'control.port' },
    });
  }
  return {
    job_name: `${config.project}-tide-up`,
    scrape_interval: SCRAPE_INTERVAL,
    http_sd_configs: [{ url: `${options.controlUrl}/v1/targets`, refresh_interval: '5s' }],
    relabel_configs: [{ source_labels: ['__meta_tide_project'], regex: exactly([config.project]), action: 'keep' }, ...relabel(config, '__meta_tide_service', '__meta_tide_replica')],
  };
}

function composeJobs(config: TideConfig): Obj[] {
  return scrapedServices(config).map((s) => ({
    job_name: promJob(config, s.name),
    scrape_interval: SCRAPE_INTERVAL,
    // Docker's DNS answers a service's name with the address of every replica
    dns_sd_configs: [{ names: [s.name], type: 'A', port: containerPort(s), refresh_interval: '5s' }],
    relabel_configs: [
      { target_label: '__tide_service', replacement: s.name },
      ...relabel(config, '__tide_service', '__address__'),
    ],
  }));
}

function kubernetesJob(config: TideConfig, options: ExportOptions): Obj {
  const pod = '__meta_kubernetes_pod_';
  return {
    job_name: `${config.project}-pods`,
    scrape_interval: SCRAPE_INTERVAL,
    kubernetes_sd_configs: [{ role: 'pod', namespaces: { names: [options.namespace] } }],
    relabel_configs: [
      { source_labels: [`${pod}annotation_prometheus_io_scrape`], regex: 'true', action: 'keep' },
      { source_labels: [`${pod}label_app_kubernetes_io_part_of`], regex: exactly([config.project]), action: 'keep' },
      // one target per pod, on the port its annotation names
      { source_labels: ['__address__', `${pod}annotation_prometheus_io_port`], regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: '__address__' },
      { source_labels: [`${pod}annotation_prometheus_io_path`], regex: '(.+)', target_label: '__metrics_path__' },
      ...relabel(config, `${pod}label_app_kubernetes_io_name`, `${pod}name`),
    ],
  };
}

/**
 * `tide export prometheus-config`: the `scrape_configs` of a Prometheus configuration for the
 * running system, with `rule_files` naming the file `tide export prometheus-rules` writes.
 */
export function exportPrometheusConfig(config: TideConfig, options: ExportOptions): ExportResult {
  const platform = options.platform;
  const jobs = platform === 'local' ? [localJob(config, options)] : platform === 'compose' ? composeJobs(config) : [kubernetesJob(config, options)];
  const notes: string[] = [];
  if (platform === 'compose') notes.push('run Prometheus on the Compose network (docker compose -p <project>) so the service names resolve');
  return {
    documents: [
      {
        body: { global: { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL }, rule_files: [options.rulesFile], scrape_configs: jobs },
        comment: `Prometheus scrape config for ${config.project} (${platform}), exported by tide export prometheus-config.\nEvery replica gets job="${config.project}-<service>", as the rules and the dashboard select.`,
      },
    ],
    notes,
  };
}

/**
 * For the Prometheus Operator: one PodMonitor per scraped service, selecting its pods by the
 * labels the Kubernetes export gives them, with the relabelling that sets the rules' labels
 * (the operator's own job label would be `podMonitor/<namespace>/<name>/0`).
 */
export function podMonitors(config: TideConfig, options: ExportOptions, podLabels: (service: string) => Record<string, string>): Obj[] {
  return scrapedServices(config).map((s) => ({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: { name: s.name, namespace: options.namespace, labels: podLabels(s.name) },
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/name': s.name, 'app.kubernetes.io/part-of': config.project } },
      podMetricsEndpoints: [
        {
          port: s.kind === 'api' ? 'http' : 'metrics',
          path: '/metrics',
          relabelings: [
            { action: 'replace', targetLabel: 'job', replacement: promJob(config, s.name) },
            { action: 'replace', targetLabel: 'service', replacement: s.name },
            { action: 'replace', sourceLabels: ['__meta_kubernetes_pod_name'], targetLabel: 'replica' },
          ],
        },
      ],
    },
  }));
}

/** A label matcher on the jobs of every scraped service (the dashboard's "Replicas up"). */
export function scrapedJobs(config: TideConfig): string {
  return labelMatch('job', scrapedServices(config).map((s) => promJob(config, s.name)));
}
