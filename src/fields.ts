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

/** A problem a schema (zod) found, in the shape zod reports it. */
export interface SchemaIssue {
  code: string;
  path: ReadonlyArray<PropertyKey>;
  message: string;
  /** The unknown keys of an `unrecognized_keys` issue. */
  keys?: readonly string[];
  /** The value found (with zod's `reportInput`): undefined for a missing field. */
  input?: unknown;
}

/** A schema's problem as users read it: the field it names and what is wrong there. */
export interface FieldIssue {
  /** The path to the field; an unknown key is named itself (zod reports it on its parent). */
  path: PropertyKey[];
  /** `fieldPath(path, prefix)`. */
  field: string;
  /** What is wrong: `unknown key "x"`, `is required`, or the schema's message without its "Invalid input:" preface. */
  message: string;
  /** The key, when the problem is an unknown key (for a suggestion of the known one). */
  unknownKey?: string;
}

/** The one mapping from a schema's issues to fields and messages: one entry per unknown key, the rest one each. */
export function fieldIssues(issues: readonly SchemaIssue[], prefix = ''): FieldIssue[] {
  return issues.flatMap((issue): FieldIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      return (issue.keys ?? []).map((key) => {
        const path = [...issue.path, key];
        return { path, field: fieldPath(path, prefix), message: `unknown key "${key}"`, unknownKey: key };
      });
    }
    // with reportInput, a missing field is an issue whose input is present and undefined
    const missing = 'input' in issue && issue.input === undefined;
    return [{ path: [...issue.path], field: fieldPath(issue.path, prefix), message: missing ? 'is required' : issue.message.replace(/^Invalid (input|option): /, '') }];
  });
}
