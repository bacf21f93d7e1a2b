/**
 * The exports: one pure function per target, registered in one map, and the rendering of a
 * result as YAML (multi-document for Kubernetes, with each document's comment above it) or
 * JSON.
 */
import { Document } from 'yaml';

import type { TideConfig } from '../config/schema.js';
import { connectionBudget } from '../db/budget.js';
import { TideError } from '../errors.js';
import { exportCompose } from './compose.js';
import { exportEcs } from './ecs.js';
import { exportGrafana } from './grafana.js';
import { exportKubernetes } from './kubernetes.js';
import { exportPrometheusRules } from './prometheus.js';
import { exportPrometheusConfig } from './scrape.js';
import { defaultOptions, type Exporter, type ExportOptions, type ExportResult } from './types.js';

export type { ExportOptions, ExportResult } from './types.js';
export { SCRAPE_PLATFORMS } from './scrape.js';

/** Every target, with its natural output format. */
export const EXPORTS = {
  kubernetes: { run: exportKubernetes, format: 'yaml', summary: 'Deployments, Services, PodDisruptionBudgets, HPA or KEDA objects, in-cluster tide autoscale' },
  compose: { run: exportCompose, format: 'yaml', summary: 'a Compose file with a reverse proxy, replicas, stop grace periods and the autoscaler' },
  ecs: { run: exportEcs, format: 'json', summary: 'Application Auto Scaling requests (scalable targets, policies, scheduled actions, alarms)' },
  'prometheus-rules': { run: exportPrometheusRules, format: 'yaml', summary: "the runbooks' alerts as a Prometheus rule file" },
  'prometheus-config': { run: exportPrometheusConfig, format: 'yaml', summary: 'a Prometheus scrape config (local tide up, Compose or Kubernetes pods) giving the rules their labels' },
  grafana: { run: exportGrafana, format: 'json', summary: 'a Grafana dashboard for the same metrics' },
} as const satisfies Record<string, { run: Exporter; format: 'yaml' | 'json'; summary: string }>;

export type ExportTarget = keyof typeof EXPORTS;

export function isExportTarget(name: string): name is ExportTarget {
  return Object.hasOwn(EXPORTS, name);
}

/** The error for a target that does not exist, naming the ones that do. */
export function unknownTarget(name: string): TideError {
  return new TideError('TIDE_EXPORT_UNKNOWN_TARGET', `There is no export "${name}"; the targets are ${Object.keys(EXPORTS).join(', ')}.`, {
    where: { arg: name },
  });
}

/**
 * Export the config for one target.
 * @throws TideError TIDE_EXPORT_UNKNOWN_TARGET, TIDE_EXPORT_UNSUPPORTED
 */
export function exportConfig(target: string, config: TideConfig, options: Partial<ExportOptions> = {}): ExportResult {
  if (!isExportTarget(target)) throw unknownTarget(target);
  const result = EXPORTS[target].run(config, defaultOptions(config, options));
  return { ...result, notes: [...result.notes, ...budgetNotes(config)] };
}

/**
 * The connection budget at max replicas, as a note: against database.max_connections when
 * declared (an export cannot ask the database), otherwise the total alone.
 */
function budgetNotes(config: TideConfig): string[] {
  const max = config.database.maxConnections;
  const budget = connectionBudget(Object.values(config.services), max ? { limit: max, source: 'database.max_connections' } : undefined, {
    listens: config.database.pooler !== 'pgbouncer' || config.database.directUrl !== undefined,
  });
  if (budget.lines.length === 0 || budget.verdict === 'ok') return [];
  return [`connection budget${budget.verdict === 'over' ? ' (OVER)' : ''}: ${budget.message}`];
}

function commentLines(text: string): string {
  return text
    .split('\n')
    .map((l) => ` ${l}`)
    .join('\n');
}

/**
 * The result as text: YAML (documents separated by `---`) or JSON. Several documents in JSON
 * are a Kubernetes `List`, which `kubectl apply -f` takes as it takes the YAML stream.
 */
export function renderExport(result: ExportResult, format: 'yaml' | 'json'): string {
  if (format === 'json') {
    const bodies = result.documents.map((d) => d.body);
    const out = bodies.length === 1 ? bodies[0] : { apiVersion: 'v1', kind: 'List', items: bodies };
    return `${JSON.stringify(out, null, 2)}\n`;
  }
  return result.documents
    .map((d) => {
      // no anchors and aliases for objects used twice: plain YAML reads better and every
      // consumer (kubectl, compose, promtool) takes it
      const doc = new Document(d.body, { aliasDuplicateObjects: false });
      if (d.comment) doc.commentBefore = commentLines(d.comment);
      return doc.toString({ lineWidth: 0 });
    })
    .join('---\n');
}
