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
  TIDE_DB_NOT_FOUND: { status: 503, exit: 3, summary: 'The database DATABASE_URL names does not exist on that server (the error names the host and the database, and how to create it).' },
  TIDE_DB_ROLE_NOT_FOUND: { status: 503, exit: 3, summary: 'The role (user) DATABASE_URL names does not exist on that server (the error names the host and the role, and how to create it).' },
  TIDE_DB_AUTH_FAILED: { status: 503, exit: 3, summary: 'PostgreSQL refused the user or password in DATABASE_URL (or its pg_hba.conf refuses this host).' },
  TIDE_DB_POOLER: { status: 503, exit: 3, summary: 'The connection pooler in front of PostgreSQL (PgBouncer) failed the statement: its pool is full, or it lost session state; retry shortly.' },
  TIDE_DB_BUDGET: { status: 400, exit: 2, summary: "At max replicas the services would open more database connections than the server's max_connections (or the pooler's max_client_conn) allows." },
  TIDE_DB_URL_INVALID: { status: 400, exit: 2, summary: 'DATABASE_URL (or the config database url) is not a valid PostgreSQL URL.' },
  TIDE_DB_EMBEDDED_MISSING: { status: 500, exit: 3, summary: 'The embedded PostgreSQL binaries are not installed.' },
  TIDE_DB_EMBEDDED_ROOT: { status: 500, exit: 3, summary: 'Running as root with neither a `postgres` nor a `nobody` user to run the embedded PostgreSQL as.' },
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
  TIDE_API_REQUEST_TIMEOUT: { status: 408, exit: 1, summary: 'The request head did not arrive within the header timeout; the connection is closed.' },
  TIDE_API_HEADERS_TOO_LARGE: { status: 431, exit: 2, summary: 'The request head is larger than the API accepts (16 KiB); send fewer or shorter headers.' },
  TIDE_API_BAD_REQUEST: { status: 400, exit: 2, summary: 'The request is not well-formed HTTP/1.1; the connection is closed.' },
  TIDE_TRUSTED_PROXY: { status: 400, exit: 2, summary: 'A trusted proxy entry is not an IP address or CIDR (like 10.0.0.0/8 or fd00::/8).' },
  TIDE_API_UNKNOWN_HANDLER: { status: 422, exit: 2, summary: 'The job names a handler the workers do not have.' },
  TIDE_API_UNKNOWN_QUEUE: { status: 422, exit: 2, summary: 'The job names a queue the API does not accept.' },
  TIDE_API_BAD_JOB_ID: { status: 400, exit: 2, summary: 'The job id in the URL is not a valid job id.' },
  TIDE_API_JOB_NOT_FOUND: { status: 404, exit: 1, summary: 'No job has this id.' },
  TIDE_API_NOT_RETRYABLE: { status: 409, exit: 1, summary: 'The job cannot be retried: only dead or failed jobs can.' },
  TIDE_API_NOT_FOUND: { status: 404, exit: 1, summary: 'No API route matches this method and path.' },
  TIDE_API_ROUTES_PLUGIN: { status: 500, exit: 2, summary: 'A user routes plugin (`--routes`) could not be loaded or did not export a Fastify plugin.' },
  TIDE_API_LISTEN: { status: 500, exit: 1, summary: 'The API cannot listen on the host and port (in use, or not permitted).' },
  TIDE_API_SHUTTING_DOWN: { status: 503, exit: 1, summary: 'This API replica is shutting down; retry (the load balancer sends the request to another one).' },

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
  TIDE_POLICY_INVALID: { status: 400, exit: 2, summary: "A service's `scale:` block is malformed: a field is missing, out of range, or a cron expression or time zone does not parse (the field path is named)." },
  TIDE_SCENARIO_NOT_FOUND: { status: 404, exit: 2, summary: 'The scenario file named cannot be read.' },
  TIDE_SCENARIO_INVALID: { status: 400, exit: 2, summary: 'A scenario file is not valid YAML or a field in it is missing or malformed (the file, line and field are named).' },
  TIDE_SCENARIO_TRACE_MISSING: { status: 404, exit: 2, summary: 'The arrival trace a scenario names cannot be read.' },
  TIDE_SCENARIO_TRACE_INVALID: { status: 400, exit: 2, summary: 'A row of an arrival trace (`t,count` CSV) is malformed (the file and line are named).' },
  TIDE_SIM_UNKNOWN_POLICY: { status: 400, exit: 2, summary: 'The simulator has no policy of the name given to --policy.' },
  TIDE_SIM_WRITE: { status: 400, exit: 2, summary: 'A file `tide simulate` writes (the --chart SVG, or the scenarios under --out) cannot be written: its directory is missing or not writable.' },

  // --- supervisor and load balancer
  TIDE_LB_NO_UPSTREAM: { status: 503, exit: 1, summary: 'The load balancer has no healthy, non-draining upstream (API replica) to send the request to.' },
  TIDE_LB_UPSTREAM_FAILED: { status: 502, exit: 1, summary: 'The upstream (and every other one tried, for a request safe to retry) failed to answer: connection refused, reset or closed.' },
  TIDE_LB_UPSTREAM_TIMEOUT: { status: 504, exit: 1, summary: 'The upstream did not send response headers within the load balancer\'s upstream timeout.' },
  TIDE_LB_RATE_LIMITED: { status: 429, exit: 1, summary: 'This client (its address, or the one a trusted proxy forwarded) sent more requests than the balancer rate_limit allows; retry after the Retry-After seconds.' },
  TIDE_LB_PORT_IN_USE: { status: 500, exit: 1, summary: "The load balancer's port is in use by another process (the error names the host and port; set balancer.port, 0 for any free port)." },
  TIDE_LB_LISTEN: { status: 500, exit: 1, summary: 'The load balancer cannot listen on its host and port (in use, or not allowed).' },
  TIDE_LB_CLOSED: { status: 500, exit: 1, summary: 'The load balancer was closed; it takes no more upstreams.' },
  TIDE_LB_UNKNOWN_UPSTREAM: { status: 404, exit: 1, summary: 'The load balancer has no upstream with the id given.' },
  TIDE_LB_UPSTREAM_URL: { status: 500, exit: 1, summary: 'An upstream address is not http://host:port; the balancer forwards plain HTTP/1.1 to its replicas.' },
  TIDE_LB_BAD_REQUEST: { status: 400, exit: 1, summary: 'The request is not valid HTTP/1.1 (a malformed line or header, both Content-Length and Transfer-Encoding, several Content-Length, no Host, a malformed chunked body); the balancer refuses it and closes the connection.' },
  TIDE_LB_HEAD_TOO_LARGE: { status: 431, exit: 1, summary: 'The request line and headers are larger than 16 KiB.' },
  TIDE_LB_REQUEST_TIMEOUT: { status: 408, exit: 1, summary: 'The request head did not arrive in full within 60 s of its first byte.' },
  TIDE_SUPERVISOR_UNKNOWN_SERVICE: { status: 404, exit: 2, summary: 'The service named is not one the running `tide up` supervises.' },
  TIDE_SUPERVISOR_SCALE_INVALID: { status: 400, exit: 2, summary: 'A replica count is not a whole number within the service min..max.' },
  TIDE_SUPERVISOR_REPLICA_UNHEALTHY: { status: 500, exit: 1, summary: 'A new replica exited or did not pass its health check in time (a scale-out or rolling restart stopped there).' },
  TIDE_SUPERVISOR_STOPPING: { status: 409, exit: 1, summary: 'The supervisor is shutting down and accepts no more changes.' },
  TIDE_SUPERVISOR_NOT_RUNNING: { status: 503, exit: 1, summary: 'No `tide up` answers for this project (no .tide/control.json, or its control API does not answer).' },
  TIDE_SUPERVISOR_ALREADY_RUNNING: { status: 409, exit: 1, summary: 'Another `tide up` already runs for this project (its control API answers).' },
  TIDE_CONTROL_UNAUTHORIZED: { status: 401, exit: 2, summary: 'The control API is bound to a non-loopback address and the request has no valid `Authorization: Bearer <token>`.' },
  TIDE_CONTROL_TOKEN_REQUIRED: { status: 400, exit: 2, summary: 'The control API is configured on a non-loopback address without a token (control.token or TIDE_CONTROL_TOKEN).' },
  TIDE_CONTROL_BAD_REQUEST: { status: 400, exit: 2, summary: 'A control API request has a malformed body or an unknown endpoint.' },

  // --- actuators
  TIDE_ACTUATOR_CONFIG: { status: 400, exit: 2, summary: 'An actuator config is malformed: an unknown kind, or a field missing, unknown or of the wrong type (the field is named).' },
  TIDE_ACTUATOR_REPLICAS: { status: 400, exit: 2, summary: 'A replica count given to an actuator is not a whole number >= 0; nothing was sent to the platform.' },
  TIDE_ACTUATOR_NOT_FOUND: { status: 404, exit: 1, summary: 'The platform has no such service (Compose service, Deployment or StatefulSet, ECS service or cluster).' },
  TIDE_ACTUATOR_FAILED: { status: 502, exit: 1, summary: 'The platform refused or failed a scale or observe call (a non-zero docker exit, an API error, a timeout); the message carries its last words.' },

  // --- sources
  TIDE_SOURCE_CONFIG: { status: 400, exit: 2, summary: 'A metric source config is malformed: an unknown kind, or a field missing, unknown or of the wrong type (the field is named).' },
  TIDE_SOURCE_FAILED: { status: 503, exit: 1, summary: 'A metric source could not read its backend (unreachable, refused, closed, or an unexpected failure); the message names the source.' },
  TIDE_SOURCE_ABORTED: { status: 504, exit: 1, summary: 'A metric source read was aborted (its timeout or the caller\'s signal) before the backend answered.' },
  TIDE_SOURCE_NOT_FOUND: { status: 404, exit: 1, summary: 'The queue or object a metric source reads does not exist on the backend (for example a RabbitMQ queue).' },
  TIDE_SOURCE_QUERY: { status: 502, exit: 1, summary: 'The backend rejected a metric source\'s query (SQL or PromQL error, a write in a read-only query, a wrong key type); the message carries the backend\'s words.' },
  TIDE_SOURCE_BAD_VALUE: { status: 502, exit: 1, summary: 'A metric source\'s backend answered with something that is not the number(s) expected (not JSON, not numeric, several series where one was expected).' },

  // --- controller
  TIDE_CONTROLLER_CONFIG: { status: 400, exit: 2, summary: 'An autoscaled service cannot be controlled as configured: no metric source to read (name `sources:`), or a source or service listed twice (the field is named).' },
  TIDE_CONTROLLER_NO_ACTUATOR: { status: 400, exit: 2, summary: '`tide autoscale` runs outside `tide up`, so an autoscaled service needs an `actuator:` (compose, kubernetes or ecs); the service is named.' },
  TIDE_CONTROLLER_UNKNOWN_SERVICE: { status: 404, exit: 2, summary: 'The service named is not one the autoscaler controls (it has no `scale:` block).' },

  // --- load and plan
  TIDE_LOAD_URL: { status: 400, exit: 2, summary: 'The load target is not an http:// or https:// URL with a host.' },
  TIDE_LOAD_STAGES: { status: 400, exit: 2, summary: 'A --stages list is malformed: each stage is duration:target (30s:50,2m:200,30s:0); the stage is named.' },
  TIDE_LOAD_THRESHOLD: { status: 400, exit: 2, summary: "A --threshold is not a k6-style expression such as p(99)<2000, avg<200, failed<0.01 or rate>100." },
  TIDE_LOAD_TRACE: { status: 400, exit: 2, summary: 'The --trace file cannot be read, or a row is not `t,count` (the file and line are named).' },
  TIDE_LOAD_TEMPLATE: { status: 400, exit: 2, summary: 'The request template is malformed: an unknown {{variable}}, a header not "Name: value", a bad method or path, or an unreadable @body file.' },
  TIDE_PLAN_MEASUREMENT: { status: 500, exit: 1, summary: '`tide plan` could not measure a capacity: no job finished, or the API met the latency target at no rate tried (the message says which).' },

  // --- export
  TIDE_EXPORT_UNKNOWN_TARGET: { status: 400, exit: 2, summary: '`tide export` names a target it does not have (kubernetes, compose, ecs, prometheus-rules, grafana).' },
  TIDE_EXPORT_UNSUPPORTED: { status: 400, exit: 2, summary: 'A policy cannot be expressed on the platform asked for (for example a steps policy with --autoscaler hpa); the service and policy are named.' },
  TIDE_EXPORT_WRITE: { status: 500, exit: 1, summary: 'The export could not be written to the -o file.' },

  // --- dashboard
  TIDE_DASHBOARD_NOT_FOUND: { status: 404, exit: 1, summary: 'No dashboard page, asset or endpoint at this path (the page is /dashboard/).' },
  TIDE_DASHBOARD_REMOTE: { status: 502, exit: 1, summary: '`tide dashboard --connect`: the remote control API does not answer, or answers without a dashboard (an older `tide up`).' },
  TIDE_DASHBOARD_LISTEN: { status: 500, exit: 1, summary: '`tide dashboard` cannot listen on its host and port (in use, or not allowed).' },
  TIDE_DASHBOARD_ORIGIN: { status: 403, exit: 2, summary: 'A browser request to the control API came from a page of another site (its Origin), or named a Host that is not a loopback name on a loopback-bound API (DNS rebinding); refused.' },

  // --- doctor
  TIDE_DOCTOR_NO_TARGET: { status: 400, exit: 2, summary: '`tide doctor` has nothing to examine: no running `tide up`, no --api or --balancer, and no metric `sources:` in the config.' },
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

/** The code and message of anything thrown: a TideError's own, else TIDE_INTERNAL (a bug) and its message. */
export function errorFacts(err: unknown): { code: string; message: string } {
  if (isTideError(err)) return { code: err.code, message: err.message };
  return { code: 'TIDE_INTERNAL', message: err instanceof Error ? err.message : String(err) };
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
