/** The chaos scenarios, in the order `npm run test:chaos` runs them. */
import type { Scenario } from '../types.js';
import { autoscalerFaults } from './autoscaler-faults.js';
import { dbKill } from './db-kill.js';
import { dbRestart } from './db-restart.js';
import { fuzz } from './fuzz.js';
import { killAndScale } from './kill-and-scale.js';
import { replicaKill } from './replica-kill.js';
import { security } from './security.js';

export const SCENARIOS: readonly Scenario[] = [killAndScale, dbRestart, dbKill, replicaKill, autoscalerFaults, fuzz, security];
