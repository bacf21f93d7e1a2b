/** The chaos scenarios, in the order `npm run test:chaos` runs them. */
import type { Scenario } from '../types.js';
import { dbRestart } from './db-restart.js';
import { killAndScale } from './kill-and-scale.js';
import { replicaKill } from './replica-kill.js';

export const SCENARIOS: readonly Scenario[] = [killAndScale, dbRestart, replicaKill];
