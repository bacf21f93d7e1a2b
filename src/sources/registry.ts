/**
 * The one explicit map of metric source kinds. Adding a source: write `src/sources/<kind>.ts`
 * exporting a `SourceDefinition`, add one line to SOURCES, and call the conformance suite from
 * its test (docs/sources.md says more).
 */
import type { z } from 'zod';

import { TideError, type Where } from '../errors.js';
import { fieldIssues, fieldPath } from '../fields.js';
import { builtinSource } from './builtin.js';
import { bullmqSource } from './bullmq.js';
import { httpJsonSource } from './http-json.js';
import { postgresSource } from './postgres.js';
import { processSource } from './process.js';
import { prometheusSource } from './prometheus.js';
import { rabbitmqSource } from './rabbitmq.js';
import { redisSource } from './redis.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

/** A definition with its config type closed over, so one map can hold them all soundly. */
interface Entry {
  kind: string;
  summary: string;
  schema: z.ZodType;
  build(raw: unknown, where: Where, ctx: SourceContext): MetricSource;
}

function entry<T>(def: SourceDefinition<T>): Entry {
  return {
    kind: def.kind,
    summary: def.summary,
    schema: def.schema,
    build(raw, where, ctx) {
      const parsed = def.schema.safeParse(raw);
      if (!parsed.success) {
        const issues = fieldIssues(parsed.error.issues, where.field);
        const first = issues[0];
        const field = first?.field ?? where.field ?? '';
        throw new TideError('TIDE_SOURCE_CONFIG', `${def.kind} source: ${field || 'config'}: ${first?.message ?? 'invalid config'}`, {
          where: { ...where, ...(field ? { field } : {}) },
          details: { kind: def.kind, issues: issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
        });
      }
      return def.create(parsed.data, ctx);
    },
  };
}

/** kind -> definition. The only list of sources there is. */
const SOURCES: Readonly<Record<string, Entry>> = {
  builtin: entry(builtinSource),
  postgres: entry(postgresSource),
  bullmq: entry(bullmqSource),
  rabbitmq: entry(rabbitmqSource),
  redis: entry(redisSource),
  prometheus: entry(prometheusSource),
  'http-json': entry(httpJsonSource),
  process: entry(processSource),
};

/** The kinds a config may name, sorted. */
export function sourceKinds(): string[] {
  return Object.keys(SOURCES).sort();
}

/** One line per kind, for docs and help. */
export function sourceSummaries(): Array<{ kind: string; summary: string }> {
  return sourceKinds().map((kind) => ({ kind, summary: SOURCES[kind]!.summary }));
}

const defaultContext: SourceContext = { now: () => Date.now() };

/**
 * Validates a source config (`{ kind, ...fields }`) with its kind's schema and creates the
 * source. Nothing connects until the first read. A bad config is a TIDE_SOURCE_CONFIG whose
 * `where.field` names the field, under `where.field` given here (for example `sources.queue`).
 */
export function createSource(kindAndConfig: unknown, where: Where = {}, ctx: SourceContext = defaultContext): MetricSource {
  if (typeof kindAndConfig !== 'object' || kindAndConfig === null || Array.isArray(kindAndConfig)) {
    throw new TideError('TIDE_SOURCE_CONFIG', 'a source config is a mapping with a `kind` and its fields', { where });
  }
  const { kind, ...config } = kindAndConfig as Record<string, unknown>;
  const kindField = fieldPath(['kind'], where.field);
  if (typeof kind !== 'string') {
    throw new TideError('TIDE_SOURCE_CONFIG', `a source needs a \`kind\`: one of ${sourceKinds().join(', ')}`, { where: { ...where, field: kindField } });
  }
  const found = Object.hasOwn(SOURCES, kind) ? SOURCES[kind] : undefined;
  if (!found) {
    throw new TideError('TIDE_SOURCE_CONFIG', `there is no source kind "${kind}": use one of ${sourceKinds().join(', ')}`, { where: { ...where, field: kindField } });
  }
  return found.build(config, where, ctx);
}
