/** The checks `tide doctor` runs, in the order their findings print within one severity. */
import type { Check } from '../types.js';
import { apiLatency } from './api-latency.js';
import { balancerRefusals } from './balancer-refusals.js';
import { capacity } from './capacity.js';
import { databaseSupervision } from './database-supervision.js';
import { dbBudget } from './db-budget.js';
import { dbConnections } from './db-connections.js';
import { failingSources } from './failing-sources.js';
import { flapping } from './flapping.js';
import { poolWaiting } from './pool-waiting.js';
import { queueBacklog } from './queue-backlog.js';
import { unevenLoad } from './uneven-load.js';
import { workersNotConsuming } from './workers-not-consuming.js';

export const CHECKS: ReadonlyArray<{ name: string; check: Check }> = [
  { name: 'database-supervision', check: databaseSupervision },
  { name: 'workers-not-consuming', check: workersNotConsuming },
  { name: 'capacity', check: capacity },
  { name: 'db-connections', check: dbConnections },
  { name: 'db-budget', check: dbBudget },
  { name: 'pool-waiting', check: poolWaiting },
  { name: 'queue-backlog', check: queueBacklog },
  { name: 'balancer-refusals', check: balancerRefusals },
  { name: 'api-latency', check: apiLatency },
  { name: 'uneven-load', check: unevenLoad },
  { name: 'flapping', check: flapping },
  { name: 'failing-sources', check: failingSources },
];
