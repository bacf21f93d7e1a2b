import { z } from 'zod';

import { servicePolicySchema } from '../core/schema.js';
import { configFileSchema } from './schema.js';

interface JsonSchemaObject {
  properties?: Record<string, JsonSchemaObject>;
  additionalProperties?: JsonSchemaObject | boolean;
  required?: string[];
  [key: string]: unknown;
}

/**
 * The JSON Schema of tide.yaml as a user writes it (`io: 'input'`: fields with defaults are
 * optional), with the decision core's schema for `scale:` blocks. Cross-field rules
 * (min <= replicas <= max, distinct ports) are not expressible here; `loadConfig` checks them.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configFileSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaObject;
  const service = schema.properties?.services?.additionalProperties;
  if (service && typeof service === 'object' && service.properties) {
    const { $schema: _, ...scale } = z.toJSONSchema(servicePolicySchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaObject;
    // In tide.yaml the bounds are the service's own min and max; the block may omit them.
    scale.required = (scale.required ?? []).filter((key) => key !== 'min' && key !== 'max');
    scale.description = service.properties.scale?.description;
    service.properties.scale = scale;
  }
  return { ...schema, title: 'tide.yaml' };
}
