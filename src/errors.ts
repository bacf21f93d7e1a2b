/**
 * Every error a user can see, with a stable code. The code is the contract: messages may be
 * reworded, codes never change meaning. docs/errors.md documents each one (a test checks).
 *
 * `status` is the HTTP status when the error crosses the API; `exit` the CLI's exit code.
 */

export interface ErrorSpec {
  status: number;
  exit: number;
  summary: string;
}

export const ERRORS = {
  // --- general
  TIDE_INTERNAL: { status: 500, exit: 1, summary: 'An unexpected failure inside Tidescale (a bug: please report it).' },
  TIDE_USAGE: { status: 400, exit: 2, summary: 'A command-line argument or flag is missing or malformed.' },
  TIDE_UNKNOWN_COMMAND: { status: 400, exit: 2, summary: 'The `tide` command named does not exist.' },

  // --- database
  TIDE_DB_UNAVAILABLE: { status: 503, exit: 3, summary: 'PostgreSQL cannot be reached (down, restarting, or refusing connections).' },
  TIDE_DB_URL_INVALID: { status: 400, exit: 2, summary: 'DATABASE_URL (or the config database url) is not a valid PostgreSQL URL.' },
  TIDE_DB_EMBEDDED_MISSING: { status: 500, exit: 3, summary: 'The embedded PostgreSQL binaries are not installed.' },
  TIDE_DB_EMBEDDED_ROOT: { status: 500, exit: 3, summary: 'Running as root with no `postgres` user to run the embedded PostgreSQL as.' },
  TIDE_DB_EMBEDDED_START: { status: 500, exit: 3, summary: 'The embedded PostgreSQL failed to initialise or start.' },
  TIDE_DB_EMBEDDED_LOCKED: { status: 500, exit: 3, summary: 'Another tide process holds the embedded database start lock for too long.' },
  TIDE_DB_MIGRATION: { status: 500, exit: 3, summary: 'A schema migration failed, or the database has a newer schema than this version knows.' },

  // --- queue
  TIDE_QUEUE_INPUT: { status: 400, exit: 2, summary: 'A job to enqueue is malformed (queue or handler name, priority, attempts, run time, or payload).' },

  // --- api
  TIDE_API_BAD_JSON: { status: 400, exit: 2, summary: 'The request body is not valid JSON (or is empty while the content type says JSON).' },
  TIDE_API_VALIDATION: { status: 400, exit: 2, summary: 'A request field is missing, unknown, or of the wrong type or range; `where.field` names it.' },
  TIDE_API_MEDIA_TYPE: { status: 415, exit: 2, summary: 'The request body has a content type the API does not accept (send application/json).' },
  TIDE_API_BODY_TOO_LARGE: { status: 413, exit: 2, summary: 'The request body is larger than the API accepts (split a batch, or raise the body limit).' },
  TIDE_API_UNAUTHORIZED: { status: 401, exit: 2, summary: 'The X-API-Key header is missing or not one of the configured keys.' },
  TIDE_API_RATE_LIMITED: { status: 429, exit: 1, summary: 'Too many requests from this client in the window; retry after the Retry-After seconds.' },
  TIDE_API_UNKNOWN_HANDLER: { status: 422, exit: 2, summary: 'The job names a handler the workers do not have.' },
  TIDE_API_UNKNOWN_QUEUE: { status: 422, exit: 2, summary: 'The job names a queue the API does not accept.' },
  TIDE_API_BAD_JOB_ID: { status: 400, exit: 2, summary: 'The job id in the URL is not a valid job id.' },
  TIDE_API_JOB_NOT_FOUND: { status: 404, exit: 1, summary: 'No job has this id.' },
  TIDE_API_NOT_RETRYABLE: { status: 409, exit: 1, summary: 'The job cannot be retried: only dead or failed jobs can.' },
  TIDE_API_NOT_FOUND: { status: 404, exit: 1, summary: 'No API route matches this method and path.' },
  TIDE_API_ROUTES_PLUGIN: { status: 500, exit: 2, summary: 'A user routes plugin (`--routes`) could not be loaded or did not export a Fastify plugin.' },
  TIDE_API_LISTEN: { status: 500, exit: 1, summary: 'The API cannot listen on the host and port (in use, or not permitted).' },

  // --- worker
  TIDE_HANDLER_UNKNOWN: { status: 500, exit: 1, summary: 'A claimed job names a handler this worker does not have; the job fails (and retries elsewhere).' },
  TIDE_HANDLERS_LOAD: { status: 500, exit: 2, summary: 'The handlers module cannot be loaded or does not export an object of handler functions.' },
  TIDE_HANDLER_PAYLOAD: { status: 400, exit: 1, summary: 'A built-in handler (hash, sleep) got a payload it cannot use.' },

  // --- config
  TIDE_CONFIG_NOT_FOUND: { status: 400, exit: 2, summary: 'The config file (tide.yaml by default) does not exist or cannot be read.' },
  TIDE_CONFIG_YAML: { status: 400, exit: 2, summary: 'The config file is not valid YAML (the error names the line).' },
  TIDE_CONFIG_INVALID: { status: 400, exit: 2, summary: 'A config field is missing, unknown, of the wrong type, or inconsistent with another field (the error names the file, line and field).' },
  TIDE_CONFIG_ENV: { status: 400, exit: 2, summary: 'The config refers to an environment variable (`${NAME}`) that is not set and has no default.' },
  TIDE_CONFIG_EXISTS: { status: 400, exit: 2, summary: '`tide init` would overwrite an existing config file; pass --force to replace it.' },

  // --- core and simulator

  // --- supervisor and load balancer
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Where an error came from: a file and line, a config field, a CLI argument, a request field. */
export interface Where {
  file?: string;
  line?: number;
  column?: number;
  field?: string;
  arg?: string;
}

export class TideError extends Error {
  readonly code: ErrorCode;
  readonly where: Where | undefined;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { where?: Where; cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TideError';
    this.code = code;
    this.where = options.where;
    this.details = options.details;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }

  /** "file:line field" or "" */
  get location(): string {
    return formatWhere(this.where);
  }

  toJSON(): { code: ErrorCode; message: string; where?: Where; details?: unknown } {
    return {
      code: this.code,
      message: this.message,
      ...(this.where ? { where: this.where } : {}),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isTideError(err: unknown): err is TideError {
  return err instanceof TideError;
}

export function formatWhere(where: Where | undefined): string {
  if (!where) return '';
  const parts: string[] = [];
  if (where.file) parts.push(where.line ? `${where.file}:${where.line}${where.column ? `:${where.column}` : ''}` : where.file);
  if (where.field) parts.push(`field ${where.field}`);
  if (where.arg) parts.push(`argument ${where.arg}`);
  return parts.join(', ');
}

/** One line for a terminal: `error TIDE_X: message (at file:3, field a.b)`. */
export function formatError(err: TideError): string {
  const at = err.location;
  return `error ${err.code}: ${err.message}${at ? ` (at ${at})` : ''}`;
}
