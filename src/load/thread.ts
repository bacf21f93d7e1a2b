/**
 * A worker thread's entry: runs one share of a load run (engine.ts) and posts its counters
 * every 200 ms and its result (histogram transferred, not copied) at the end. The parent
 * posts 'abort' to stop it early.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { type EnginePlan, emptyCounters, runEngine } from './engine.js';

const port = parentPort!;
const counters = emptyCounters();
const abort = new AbortController();
port.on('message', (m: unknown) => {
  if (m === 'abort') abort.abort();
});
const progress = setInterval(() => port.postMessage({ type: 'progress', counters }), 200);
try {
  const result = await runEngine(workerData as EnginePlan, counters, abort.signal);
  port.postMessage({ type: 'done', result }, [result.histogram.counts.buffer as ArrayBuffer, result.sendHistogram.counts.buffer as ArrayBuffer]);
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
} finally {
  clearInterval(progress);
}
