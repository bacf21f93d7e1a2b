/** The chaos scenarios, in the order `npm run test:chaos` runs them. */
import type { Scenario } from '../types.js';
import { killAndScale } from './kill-and-scale.js';

export const SCENARIOS: readonly Scenario[] = [killAndScale];
