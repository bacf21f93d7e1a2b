/**
 * Which PostgreSQL to use: the URL given (DATABASE_URL or config), validated, or else the
 * embedded server under the state directory, started (or reused) on demand.
 */
import { TideError } from '../errors.js';
import { type EmbeddedDatabase, redactUrl, startEmbeddedPostgres } from './embedded.js';

export interface ResolvedDatabase {
  url: string;
  /** True when the URL is the embedded server's. */
  embedded: boolean;
  /** Stops the embedded server if this process started it; a no-op otherwise. */
  stop(): Promise<void>;
  /** The embedded server (its port, data directory, postmaster pid), when embedded. */
  server?: EmbeddedDatabase;
}

export interface ResolveOptions {
  /** The project's state directory (embedded data lives under it). Default `.tide`. */
  stateDir?: string;
  /** An explicit URL; default `process.env.DATABASE_URL`. Empty means embedded. */
  url?: string | undefined;
  log?: (line: string) => void;
  /** Where the URL came from, for the error (default `DATABASE_URL`). */
  source?: string;
}

/** Throws TIDE_DB_URL_INVALID unless `url` is a postgres:// or postgresql:// URL with a host. */
export function validateDatabaseUrl(url: string, source = 'DATABASE_URL'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new TideError('TIDE_DB_URL_INVALID', `${source} is not a URL: "${redactUrl(url)}"; expected postgres://user:password@host:5432/database.`, {
      cause,
      where: { field: source },
    });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new TideError('TIDE_DB_URL_INVALID', `${source} must start with postgres:// or postgresql://, not ${parsed.protocol}//.`, { where: { field: source } });
  }
  // a unix socket URL (postgres:///db?host=/run/postgresql) has no host but names one in the query
  if (!parsed.hostname && !parsed.searchParams.get('host')) {
    throw new TideError('TIDE_DB_URL_INVALID', `${source} names no host: "${redactUrl(url)}".`, { where: { field: source } });
  }
  if (parsed.port && !(Number(parsed.port) > 0 && Number(parsed.port) < 65536)) {
    throw new TideError('TIDE_DB_URL_INVALID', `${source} has an invalid port ${parsed.port}.`, { where: { field: source } });
  }
  return url;
}

/** The database to use: the given URL (validated), or the embedded server. */
export async function resolveDatabase(options: ResolveOptions = {}): Promise<ResolvedDatabase> {
  const url = 'url' in options ? options.url : process.env.DATABASE_URL;
  if (url) {
    return { url: validateDatabaseUrl(url, options.source), embedded: false, stop: async () => undefined };
  }
  const db = await startEmbeddedPostgres({ stateDir: options.stateDir ?? '.tide', ...(options.log ? { log: options.log } : {}) });
  return { url: db.url, embedded: true, stop: () => db.stop(), server: db };
}
