/**
 * The bridge to the decision core's schema for a service's `scale:` block. The core owns the
 * policy format (src/core/schema.ts); the config fills in what the service already says and
 * locates the core's complaints in the file.
 */
import { servicePolicySchema } from '../core/schema.js';
import type { ServicePolicy } from '../core/types.js';
import { fieldIssues } from '../fields.js';
import { suggest } from './suggest.js';

/** A problem inside a `scale:` block; `path` is relative to the block. */
export interface ScaleProblem {
  path: Array<string | number>;
  message: string;
}

/** What the service says around its `scale:` block. */
export interface ScaleContext {
  min: number;
  max: number;
  /** The worker's concurrency, when the service is a worker. */
  concurrency: number | undefined;
}

/**
 * Check a `scale:` block against the core's schema. The service's `min` and `max` are the
 * policy's bounds (written once, on the service; a block that repeats them must agree), and a
 * worker's `concurrency` is the SLO policy's slots per replica unless the policy says otherwise.
 */
export function validateScale(scale: Record<string, unknown>, context: ScaleContext): { policy?: ServicePolicy; problems: ScaleProblem[] } {
  const problems: ScaleProblem[] = [];
  for (const bound of ['min', 'max'] as const) {
    if (scale[bound] !== undefined && scale[bound] !== context[bound]) {
      problems.push({ path: [bound], message: `is ${String(scale[bound])} but the service's ${bound} is ${context[bound]}; write it once, on the service` });
    }
  }
  if (problems.length > 0) return { problems };
  const policies = Array.isArray(scale.policies)
    ? scale.policies.map((p: unknown) =>
        p !== null && typeof p === 'object' && (p as { kind?: unknown }).kind === 'slo' && (p as { concurrency?: unknown }).concurrency === undefined && context.concurrency !== undefined
          ? { ...p, concurrency: context.concurrency }
          : p,
      )
    : scale.policies;
  const input = { ...scale, min: context.min, max: context.max, ...(policies === undefined ? {} : { policies }) };
  const result = servicePolicySchema.safeParse(input);
  if (result.success) return { policy: result.data as ServicePolicy, problems };
  for (const issue of fieldIssues(result.error.issues)) {
    const path = issue.path.map((seg) => (typeof seg === 'number' ? seg : String(seg)));
    const known = path.length === 1 ? Object.keys(servicePolicySchema.shape) : [];
    problems.push({ path, message: issue.unknownKey === undefined ? issue.message : `${issue.message}${suggest(issue.unknownKey, known)}` });
  }
  return { problems };
}
