/**
 * `process`: CPU and memory of local processes (Linux /proc), for the local supervisor's
 * replicas. The pids come from the context (`ctx.pids()`), asked afresh on every read, since
 * replicas come and go.
 *
 * CPU is a fraction of one core: the process's user+system clock ticks between two reads,
 * divided by the wall time between them (monotonic, not the sample clock). State: the last
 * (ticks, start time, wall time) per pid. The first read of a pid therefore gives no CPU
 * sample (a note says so); a pid whose start time changed is a new process reusing the number
 * and starts over. Memory is the resident set (VmRSS). Samples are means over the processes
 * read, as the HPA averages over pods: `cpu_utilization` (0..1 per process),
 * `memory_rss_bytes`, and `memory_utilization` when `memory_limit_bytes` is set.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

import { z } from 'zod';

import type { Sample } from '../core/types.js';
import { METRIC } from '../core/types.js';
import { TideError } from '../errors.js';
import { type ProcStat, USER_HZ, parseProcStat } from '../os/proc.js';
import { closedError, commonFields, guardedRead, labelOf, sourceError } from './guard.js';
import type { MetricSource, SourceContext, SourceDefinition } from './types.js';

export const processConfig = z.strictObject({
  ...commonFields,
  /** Adds memory_utilization = RSS / this limit (a container's memory limit, say). */
  memory_limit_bytes: z.number().int().positive().optional(),
});
export type ProcessConfig = z.infer<typeof processConfig>;

/** VmRSS from /proc/<pid>/status, in bytes (0 for a kernel thread or zombie, which has none). */
export function parseRssBytes(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The CPU fraction of one core used between two readings. */
export function cpuFraction(prevTicks: number, ticks: number, elapsedMs: number, hz = USER_HZ): number {
  return Math.max(0, (ticks - prevTicks) / hz / (elapsedMs / 1000));
}

/** Reads one process, or undefined when it no longer exists. */
export async function readProcess(pid: number): Promise<{ stat: ProcStat; rss: number } | undefined> {
  try {
    const [statText, statusText] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    const stat = parseProcStat(statText);
    return stat ? { stat, rss: parseRssBytes(statusText) } : undefined;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function createProcessSource(config: ProcessConfig, ctx: SourceContext): MetricSource {
  const label = labelOf('process', config);
  const pidsOf = ctx.pids;
  if (!pidsOf) {
    throw new TideError('TIDE_SOURCE_CONFIG', `process source "${label.name}": it measures the processes its context names, and none were given (ctx.pids)`, {
      details: { kind: label.kind, name: label.name },
    });
  }
  const last = new Map<number, ProcStat & { wall: number }>();
  let closed = false;
  let notes: string[] = [];

  return {
    async read(signal) {
      if (closed) throw closedError(label);
      notes = [];
      return guardedRead(label, signal, config.timeout_ms, async (readSignal) => {
        const pids = [...new Set(await pidsOf())];
        if (pids.length === 0) {
          notes.push('there are no processes to measure');
          return [];
        }
        const readings = await Promise.all(pids.map((pid) => readProcess(pid)));
        const wall = performance.now();
        if (readSignal.aborted) return [];
        const cpu: number[] = [];
        const rss: number[] = [];
        for (const [i, pid] of pids.entries()) {
          const reading = readings[i];
          if (!reading) {
            last.delete(pid);
            notes.push(`process ${pid} is gone`);
            continue;
          }
          rss.push(reading.rss);
          const prev = last.get(pid);
          if (prev && prev.start === reading.stat.start && wall > prev.wall) {
            cpu.push(cpuFraction(prev.ticks, reading.stat.ticks, wall - prev.wall));
          } else {
            notes.push(`process ${pid} is read for the first time: its CPU shows from the next read`);
          }
          last.set(pid, { ...reading.stat, wall });
        }
        // Forget processes no longer asked about, so the map tracks the current replicas only.
        for (const pid of last.keys()) if (!pids.includes(pid)) last.delete(pid);
        if (rss.length === 0) {
          throw sourceError(label, 'TIDE_SOURCE_FAILED', `none of the ${pids.length} processes (${pids.slice(0, 5).join(', ')}) exists`);
        }
        const at = ctx.now();
        const samples: Sample[] = [];
        if (cpu.length > 0) samples.push({ metric: METRIC.cpu, value: mean(cpu), at });
        samples.push({ metric: 'memory_rss_bytes', value: mean(rss), at });
        if (config.memory_limit_bytes) samples.push({ metric: METRIC.memory, value: mean(rss) / config.memory_limit_bytes, at });
        return samples;
      });
    },
    async close() {
      closed = true;
      last.clear();
    },
    notes: () => notes,
  };
}

export const processSource: SourceDefinition<ProcessConfig> = {
  kind: 'process',
  summary: 'CPU (fraction of a core) and memory (RSS) of local processes, from /proc; the pids come from the supervisor.',
  schema: processConfig,
  create: createProcessSource,
};
