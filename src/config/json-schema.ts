import { z } from 'zod';

import { configFileSchema } from './schema.js';

/**
 * The JSON Schema of tide.yaml as a user writes it (`io: 'input'`: fields with defaults are
 * optional). Cross-field rules (min <= replicas <= max, distinct ports) are not expressible
 * here; `loadConfig` checks them.
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configFileSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'tide.yaml',
  };
}
