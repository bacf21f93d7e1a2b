/**
 * How a place in a config or a request is named to users: `services.api.queues[1]`. One
 * spelling for every validation error (config file, scale block, actuator, scenario).
 */

/** The path as users read it, after an optional prefix: keys joined by dots, indexes in brackets. */
export function fieldPath(path: ReadonlyArray<PropertyKey>, prefix = ''): string {
  let out = prefix;
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out;
}
