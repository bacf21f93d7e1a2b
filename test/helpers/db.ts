/**
 * One fresh schema per test file on the run's PostgreSQL (DATABASE_URL, set by `npm test`
 * to the embedded server when the environment has none), dropped afterwards.
 */
import { randomBytes } from 'node:crypto';

import { dropSchema } from '../../src/db/migrate.js';

export interface TestSchema {
  url: string;
  schema: string;
  drop(): Promise<void>;
}

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests with `npm test`, which provides one');
  return url;
}

export async function freshSchema(prefix = 't'): Promise<TestSchema> {
  const url = databaseUrl();
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  return {
    url,
    schema,
    drop: () => dropSchema(url, schema),
  };
}
