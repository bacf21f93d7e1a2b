/**
 * The bridge to the decision core's schema for a service's `scale:` block. The core owns the
 * policy format (src/core/schema.ts); the config only locates its complaints in the file.
 */

/** A problem inside a `scale:` block; `path` is relative to the block. */
export interface ScaleProblem {
  path: Array<string | number>;
  message: string;
}

/** What the block is checked against besides its own fields. */
export interface ScaleContext {
  min: number;
  max: number;
  concurrency: number | undefined;
}

/**
 * Check a `scale:` block. Until the decision core's schema lands, any mapping is accepted
 * as written (zod already made sure it is a mapping).
 */
export function validateScale(_scale: Record<string, unknown>, _context: ScaleContext): ScaleProblem[] {
  return [];
}
