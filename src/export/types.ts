/**
 * The shapes every exporter shares. An exporter is a pure function of the normalised config
 * and the options: no I/O, no clock, so the same `tide.yaml` always gives the same output and
 * the tests can compare objects, not text.
 */
import { defaultImage } from '../config/dockerfile.js';
import type { TideConfig } from '../config/schema.js';
import { TideError } from '../errors.js';

/** Which autoscaler a Kubernetes export uses for a service; `auto` picks per service. */
export type AutoscalerChoice = 'auto' | 'hpa' | 'keda' | 'tide';

export interface ExportOptions {
  /** Container image with `tide` as its entrypoint. Default `<project>:latest`, what `tide init --docker`'s Dockerfile builds. */
  image: string;
  /** Per-service images (a `command` service usually runs its own), by service name. */
  images: Record<string, string>;
  /** Kubernetes namespace. Default: the project name. */
  namespace: string;
  /** Kubernetes: force one autoscaler for every autoscaled service (default `auto`). */
  autoscaler: AutoscalerChoice;
  /** CPU request (and the meaning of 100% utilisation), Kubernetes quantity. Default `1`. */
  cpuRequest: string;
  /** Memory request and limit in MiB (utilisation is measured against it). Default 512. */
  memoryMiB: number;
  /** ECS cluster name. Default: the service's ECS actuator's cluster, else the project name. */
  cluster?: string;
  /** Prometheus server URL for KEDA `prometheus` triggers. */
  prometheusUrl: string;
  /** CloudWatch namespace the queue metrics are published under (ECS). Default `Tidescale`. */
  cloudwatchNamespace: string;
  /** `prometheus-config`: the platform whose replicas are scraped. Default `local`. */
  platform: 'local' | 'compose' | 'kubernetes';
  /** `prometheus-config --platform local`: the control API of `tide up`. Default from `control:`. */
  controlUrl: string;
  /** `prometheus-config`: the rule file it loads (`tide export prometheus-rules -o ...`). */
  rulesFile: string;
  /** Kubernetes: PodMonitor objects (Prometheus Operator) beside the scrape annotations. */
  podMonitors: boolean;
  /** The text of tide.yaml, for the in-cluster autoscaler's ConfigMap. */
  configText?: string;
}

/** One output document, with an optional comment printed above it in YAML. */
export interface ExportDocument {
  body: Record<string, unknown>;
  comment?: string;
}

export interface ExportResult {
  /** Several for Kubernetes (a multi-document YAML stream), one for the others. */
  documents: ExportDocument[];
  /** What the export could not carry over, or chose instead; printed to stderr. */
  notes: string[];
}

export type Exporter = (config: TideConfig, options: ExportOptions) => ExportResult;

/** The defaults of the options that do not depend on the config. */
export function defaultOptions(config: TideConfig, given: Partial<ExportOptions> = {}): ExportOptions {
  // checked here, for every target: a bad quantity is refused even where no query divides by it
  if (given.cpuRequest !== undefined) cpuCores(given.cpuRequest);
  return {
    image: given.image ?? defaultImage(config.project),
    images: given.images ?? {},
    namespace: given.namespace ?? kubernetesName(config.project),
    autoscaler: given.autoscaler ?? 'auto',
    cpuRequest: given.cpuRequest ?? '1',
    memoryMiB: given.memoryMiB ?? 512,
    ...(given.cluster === undefined ? {} : { cluster: given.cluster }),
    prometheusUrl: given.prometheusUrl ?? 'http://prometheus.monitoring.svc:9090',
    cloudwatchNamespace: given.cloudwatchNamespace ?? 'Tidescale',
    platform: given.platform ?? 'local',
    controlUrl: given.controlUrl ?? `http://${urlHost(config.control.host)}:${config.control.port}`,
    rulesFile: given.rulesFile ?? 'tide-rules.yml',
    podMonitors: given.podMonitors ?? false,
    ...(given.configText === undefined ? {} : { configText: given.configText }),
  };
}

/** A host as it goes in a URL: IPv6 in brackets, a wildcard as the loopback address. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** The image a service's replicas run. */
export function imageOf(options: ExportOptions, service: string): string {
  return options.images[service] ?? options.image;
}

/** A project name as a DNS-1123 label (Kubernetes names): lowercase, `-` for anything else. */
export function kubernetesName(name: string): string {
  const out = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return out || 'tide';
}

/** A Kubernetes CPU quantity (`500m`, `0.5`, `2`) in cores; TIDE_USAGE naming --cpu otherwise. */
export function cpuCores(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity.trim());
  const cores = m ? Number(m[1]) / (m[2] ? 1000 : 1) : NaN;
  if (!(cores > 0)) {
    throw new TideError('TIDE_USAGE', `The CPU request must be a quantity such as 500m, 0.5 or 2 (cores), not "${quantity}".`, { where: { arg: '--cpu' } });
  }
  return cores;
}

/** What each replica is given: the fractions CPU and memory are measured against. */
export interface ReplicaResources {
  memoryBytes: number;
  /** The CPU request in cores (`500m` is 0.5). */
  cpuCores: number;
}

/** The resources each replica is given, from the options. */
export function replicaResources(options: ExportOptions): ReplicaResources {
  return { memoryBytes: options.memoryMiB * 1024 * 1024, cpuCores: cpuCores(options.cpuRequest) };
}
