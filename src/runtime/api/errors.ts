/**
 * Turning anything a request can throw into one coded body. Fastify's own errors (JSON
 * parse, body size, media type, schema validation) and the database's connection failures
 * become TideErrors here, so the single error handler in server.ts has one shape to send:
 * `{ "error": { "code", "message", "where"? } }`.
 */
import { isConnectionError, isPoolerError, toDbError } from '../../db/errors.js';
import { TideError, type Where, isTideError } from '../../errors.js';

/** The JSON body every error response carries. */
export interface ErrorBody {
  error: { code: string; message: string; where?: Where; details?: unknown };
}

/** Seconds a client should wait before trying again after a 503 for a database outage. */
export const DB_RETRY_AFTER_S = 2;

/** One ajv error, as Fastify attaches it to `err.validation`. */
interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: AjvError[];
  validationContext?: string;
}

export function errorBody(err: TideError): ErrorBody {
  return { error: err.toJSON() };
}

/**
 * `/jobs/0/handler` -> `jobs[0].handler`: the path a person reads, with array indexes in
 * brackets, and the missing or unknown property appended where ajv reports it on the parent.
 */
export function fieldPath(error: AjvError): string {
  const parts = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra =
    error.keyword === 'required'
      ? error.params.missingProperty
      : error.keyword === 'additionalProperties'
        ? error.params.additionalProperty
        : undefined;
  if (typeof extra === 'string') parts.push(extra);
  let out = '';
  for (const part of parts) {
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

/** What a field with several accepted forms takes, for its error message. */
const FORMS: Record<string, string> = {
  run_at: 'an ISO 8601 date-time string or a time in ms since the epoch',
};

function validationMessage(error: AjvError, field: string): string {
  const name = field || 'the body';
  switch (error.keyword) {
    case 'required':
      return `${name} is required.`;
    case 'additionalProperties':
      return `${name} is not a known field.`;
    case 'type':
      return `${name} must be of type ${String(error.params.type)}.`;
    case 'format':
      return `${name} must be a ${String(error.params.format)} string.`;
    case 'anyOf':
      return `${name} must be ${FORMS[field.replace(/^.*\./, '')] ?? 'one of the accepted forms'}.`;
    case 'maxItems':
      return `${name} holds at most ${String(error.params.limit)} items (split the batch).`;
    default:
      return `${name} ${error.message ?? 'is invalid'}.`;
  }
}

/** Any thrown value -> the TideError the client will see. */
export function toTideError(err: unknown): TideError {
  if (isTideError(err)) return err;
  // the pooler's pool full, or a statement it could not keep: retry shortly, a 503 of its own
  if (isPoolerError(err)) return toDbError(err) as TideError;
  // the database restarting or away is worth a retry: a 503, never a 500
  if (isConnectionError(err)) {
    return new TideError('TIDE_DB_UNAVAILABLE', 'The database cannot be reached right now; retry shortly.', { cause: err });
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    // allErrors is off (a DoS guard), so ajv stops at the first error; an if/then wrapper
    // reports its own "must match then schema" after the real one, so skip that.
    // for an anyOf, ajv lists each branch's failure before its own summary: the summary names
    // the field without blaming one particular form
    const first = e.validation.find((v) => v.keyword === 'anyOf') ?? e.validation.find((v) => v.keyword !== 'if') ?? e.validation[0]!;
    const inner = fieldPath(first);
    const context = e.validationContext ?? 'body';
    const field = context === 'body' ? inner : inner ? `${context}.${inner}` : context;
    return new TideError('TIDE_API_VALIDATION', validationMessage(first, field), { where: { field: field || 'body' }, cause: err });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new TideError('TIDE_API_BAD_JSON', `The body is not valid JSON: ${e.message ?? ''}`.trim(), { where: { field: 'body' }, cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new TideError('TIDE_API_BODY_TOO_LARGE', 'The body is larger than this API accepts; send smaller batches.', { where: { field: 'body' }, cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new TideError('TIDE_API_MEDIA_TYPE', 'Send the body as application/json.', { where: { field: 'content-type' }, cause: err });
  }
  // secure-json-parse rejects __proto__/constructor keys with a plain SyntaxError and a 400
  if (err instanceof SyntaxError && e.statusCode === 400) {
    return new TideError('TIDE_API_BAD_JSON', `The body is not valid JSON: ${err.message}`, { where: { field: 'body' }, cause: err });
  }
  if (e.statusCode === 413) {
    return new TideError('TIDE_API_BODY_TOO_LARGE', 'The body is larger than this API accepts; send smaller batches.', { where: { field: 'body' }, cause: err });
  }
  // a safety net under the checks in server.ts: PostgreSQL's class 22 (data exception: a value
  // out of range, a character jsonb cannot store) is a value the client sent, not our bug
  if (typeof e.code === 'string' && /^22[0-9A-Z]{3}$/.test(e.code) && 'severity' in e) {
    return new TideError('TIDE_API_VALIDATION', `The database refused a value in the request: ${e.message ?? e.code}.`, { cause: err });
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // another client error from Fastify (a malformed header, say): still a client mistake
    return new TideError('TIDE_API_VALIDATION', e.message ?? 'The request is malformed.', { cause: err });
  }
  return new TideError('TIDE_INTERNAL', 'An unexpected failure inside the API; it is logged.', { cause: err });
}
