/** What every chaos scenario takes and reports (chaos/run.ts and the short CI tests share it). */

export interface ScenarioOptions {
  /** The PostgreSQL the run uses (each system scenario makes its own schema on it). */
  databaseUrl: string;
  /** The on-demand version (long); the short one otherwise. */
  full: boolean;
  /** Overrides the scenario's duration, ms (the CI tests use ~20 s). */
  durationMs?: number;
  seed: number;
  /** Progress lines. */
  log: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  /** What was done to the system, one sentence for the report. */
  did: string;
  durationMs: number;
  /** Everything counted, by name (accepted, completed, duplicates, failures by cause...). */
  counts: Record<string, number>;
  /** Invariants broken; empty means the scenario passed. */
  violations: string[];
  /** Things worth knowing that are not violations (a bug marked todo, a skipped part). */
  notes: string[];
}

export interface Scenario {
  name: string;
  /** One line: the invariant it checks. */
  checks: string;
  run(options: ScenarioOptions): Promise<ScenarioResult>;
}
