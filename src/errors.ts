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

  // --- api

  // --- worker

  // --- config

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
