/**
 * The `scale:` block of a service as users write it (YAML or JSON), validated with zod. Keys are
 * camelCase, the same names as the ServicePolicy type (`waitSeconds`, `stabilizationWindowSeconds`),
 * so the docs, the types and the file say one thing. Unknown keys are errors: a misspelt
 * `stabilisationWindowSeconds` must not be silently ignored.
 */
import { z } from 'zod';

import { TideError, type Where } from '../errors.js';
import { fieldIssues } from '../fields.js';
import { checkTimeZone, parseCron } from './cron.js';
import type { ServicePolicy } from './types.js';

const count = z.number().int().min(0);
const positive = z.number().positive();
const seconds = z.number().min(0);

const targetSchema = z.strictObject({
  kind: z.literal('target'),
  name: z.string().min(1).optional(),
  metric: z.string().min(1),
  type: z.enum(['utilization', 'average']),
  target: positive,
  tolerance: z.number().min(0).max(1).optional(),
});

const stepsSchema = z.strictObject({
  kind: z.literal('steps'),
  name: z.string().min(1).optional(),
  metric: z.string().min(1),
  up: z
    .array(z.strictObject({ above: z.number(), add: count.optional(), set: count.optional(), percent: positive.optional() }))
    .optional(),
  down: z
    .array(z.strictObject({ below: z.number(), remove: count.optional(), set: count.optional(), percent: z.number().min(0).max(100).optional() }))
    .optional(),
});

const sloSchema = z.strictObject({
  kind: z.literal('slo'),
  name: z.string().min(1).optional(),
  waitSeconds: positive,
  attainment: z.number().gt(0).lt(1),
  concurrency: z.number().int().min(1),
  startupSeconds: seconds.optional(),
  margin: z.number().gt(0).max(1).optional(),
  scaleInHoldSeconds: seconds.optional(),
  reversalSeconds: seconds.optional(),
  fastWindowSeconds: positive.optional(),
  slowWindowSeconds: positive.optional(),
});

const rulesSchema = z.strictObject({
  stabilizationWindowSeconds: z.number().min(0).max(3600).optional(),
  selectPolicy: z.enum(['Max', 'Min', 'Disabled']).optional(),
  policies: z
    .array(z.strictObject({ type: z.enum(['Pods', 'Percent']), value: positive, periodSeconds: z.number().gt(0).max(1800) }))
    .optional(),
  cooldownSeconds: seconds.optional(),
});

const scheduleSchema = z.strictObject({
  cron: z.string().min(1),
  durationSeconds: positive.optional(),
  min: count.optional(),
  max: count.optional(),
  timezone: z.string().min(1).optional(),
});

/** The zod schema for a `scale:` block. */
export const servicePolicySchema = z
  .strictObject({
    min: count,
    max: count,
    policies: z.array(z.discriminatedUnion('kind', [targetSchema, stepsSchema, sloSchema])).default([]),
    schedule: z.array(scheduleSchema).optional(),
    behavior: z.strictObject({ scaleUp: rulesSchema.optional(), scaleDown: rulesSchema.optional() }).optional(),
    fallback: z.strictObject({ failureThreshold: z.number().int().min(1), replicas: count }).optional(),
    activation: z.strictObject({ metric: z.string().min(1), threshold: z.number(), cooldownSeconds: seconds.optional() }).optional(),
    panic: z.strictObject({ threshold: z.number().gt(1), windowSeconds: positive, stableWindowSeconds: positive.optional() }).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.min > v.max) ctx.addIssue({ code: 'custom', path: ['min'], message: `min (${v.min}) is above max (${v.max})` });
    v.schedule?.forEach((e, i) => {
      try {
        parseCron(e.cron);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['schedule', i, 'cron'], message: err instanceof Error ? err.message : String(err) });
      }
      if (e.timezone) {
        try {
          checkTimeZone(e.timezone);
        } catch (err) {
          ctx.addIssue({ code: 'custom', path: ['schedule', i, 'timezone'], message: err instanceof Error ? err.message : String(err) });
        }
      }
      if (e.min !== undefined && e.max !== undefined && e.min > e.max) {
        ctx.addIssue({ code: 'custom', path: ['schedule', i, 'min'], message: `min (${e.min}) is above max (${e.max})` });
      }
    });
    v.policies.forEach((p, i) => {
      if (p.kind === 'steps') {
        p.up?.forEach((s, j) => {
          if ([s.add, s.set, s.percent].filter((x) => x !== undefined).length !== 1) {
            ctx.addIssue({ code: 'custom', path: ['policies', i, 'up', j], message: 'a step takes exactly one of add, set or percent' });
          }
        });
        p.down?.forEach((s, j) => {
          if ([s.remove, s.set, s.percent].filter((x) => x !== undefined).length !== 1) {
            ctx.addIssue({ code: 'custom', path: ['policies', i, 'down', j], message: 'a step takes exactly one of remove, set or percent' });
          }
        });
      }
    });
  });

/**
 * Validates a `scale:` block. `where` says where it came from (file, line, and the field path
 * of the block itself, for example `services.worker.scale`); an error names the full field path.
 */
export function parseServicePolicy(input: unknown, where: Where = {}): ServicePolicy {
  const result = servicePolicySchema.safeParse(input);
  if (result.success) return result.data as ServicePolicy;
  const issues = fieldIssues(result.error.issues, where.field).map(({ field, message }) => ({ field, message }));
  const first = issues[0]!;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  throw new TideError('TIDE_POLICY_INVALID', `${first.field || 'scale'}: ${first.message}${more}.`, {
    where: { ...where, field: first.field || where.field || 'scale' },
    details: issues,
  });
}
