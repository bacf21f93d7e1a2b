/**
 * `tide load URL`: a thin shell over runLoad (src/load). Parses the flags, shows progress on
 * stderr (a bar on a TTY, a line every 5 s otherwise, nothing with --json), prints the
 * summary, and exits 99 when a threshold fails (as k6 does), 1 when the target never
 * answered, else 0.
 */
import { readFileSync } from 'node:fs';

import { TideError } from '../../errors.js';
import {
  type LoadOptions,
  type Progress,
  checkThresholds,
  durationArg,
  formatSummary,
  loadTraceFile,
  parseHeaders,
  parseStages,
  parseThreshold,
  runLoad,
  summaryJson,
} from '../../load/index.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide load <URL> [options]

Sends HTTP load to URL and prints a summary: requests, rate, latency min/avg/p50/p90/p95/p99/max
(from an HDR histogram), status codes, errors and dropped iterations. A bare origin
(http://host:port) gets POST /v1/jobs with a demo sleep job.

Open model (the default): requests at intended times; latency from the intended time.
  --rate N             requests/s (with --duration), or the start rate of --stages
  --duration D         30s, 2m, 1m30s
  --stages S           ramp the rate: 30s:50,2m:200,30s:0
  --trace FILE         replay a t,count trace (seconds, requests per row)
  --compress F         replay the trace F times faster (default 1)
  --max-in-flight N    arrivals over N outstanding requests are dropped (default 10000)
  --max-lag D          arrivals later than D are dropped (default 1s)
  --connections N      sockets in all (default 100)
Closed model (--model closed, or --vus): virtual users loop request -> response.
  --vus N              VUs (with --duration), or the start of --stages
  --stages S           ramp the VUs: 30s:50,2m:200,30s:0
Requests:
  --method M  --path P  --header 'Name: value' (repeatable)  --body TEXT|@file
               variables in the path and body: {{counter}} {{uuid}} {{random}} {{thread}}
Results:
  --threshold EXPR     k6 syntax, repeatable: 'p(99)<2000' 'avg<200' 'failed<0.01' 'rate>100'
                       exit 99 when one fails
  --json               the summary as one JSON object on the last stdout line
  --quiet              no progress
Other: --timeout D (per request, default 10s)  --threads N|auto  --seed N`;

function bar(p: Progress): string {
  const frac = p.durationMs > 0 ? Math.min(1, p.elapsedMs / p.durationMs) : 0;
  const width = 24;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(p.elapsedMs / 1000).toFixed(1)}s/${(p.durationMs / 1000).toFixed(0)}s  sent ${p.sent}  done ${p.completed}  failed ${p.failed}  dropped ${p.dropped}  in flight ${p.inFlight}`;
}

function bodyArg(value: string | undefined): string | undefined {
  if (value === undefined || !value.startsWith('@')) return value;
  try {
    return readFileSync(value.slice(1), 'utf8');
  } catch (cause) {
    throw new TideError('TIDE_LOAD_TEMPLATE', `The body file ${value.slice(1)} cannot be read: ${(cause as Error).message}.`, { where: { arg: '--body', file: value.slice(1) }, cause });
  }
}

export const command: Command = {
  summary: 'send HTTP load (open or closed model) and print latency, errors and thresholds',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      rate: { type: 'string' },
      duration: { type: 'string' },
      stages: { type: 'string' },
      trace: { type: 'string' },
      compress: { type: 'string' },
      vus: { type: 'string' },
      model: { type: 'string' },
      method: { type: 'string' },
      path: { type: 'string' },
      header: { type: 'string', multiple: true },
      body: { type: 'string' },
      threshold: { type: 'string', multiple: true },
      'max-in-flight': { type: 'string' },
      'max-lag': { type: 'string' },
      connections: { type: 'string' },
      timeout: { type: 'string' },
      threads: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
    });
    const url = positionals[0];
    if (!url || positionals.length > 1) throw new TideError('TIDE_USAGE', 'tide load takes one URL (tide load --help).', { where: { arg: 'URL' } });
    if (values.model !== undefined && values.model !== 'open' && values.model !== 'closed') {
      throw new TideError('TIDE_USAGE', `--model is open or closed, not "${values.model}".`, { where: { arg: '--model' } });
    }
    const thresholds = (values.threshold ?? []).map((t) => parseThreshold(t));
    const options: LoadOptions = { url, headers: parseHeaders(values.header ?? []) };
    if (values.model) options.model = values.model as 'open' | 'closed';
    if (values.rate !== undefined) options.rate = numberArg(values.rate, '--rate', 0);
    if (values.vus !== undefined) options.vus = numberArg(values.vus, '--vus', 0);
    if (values.duration !== undefined) options.durationMs = durationArg(values.duration, '--duration', 0);
    if (values.stages !== undefined) options.stages = parseStages(values.stages);
    if (values.trace !== undefined) {
      const trace = loadTraceFile(values.trace);
      options.trace = { t: trace.t, count: trace.count, compression: numberArg(values.compress, '--compress', 1, Number.MIN_VALUE) };
    } else if (values.compress !== undefined) {
      throw new TideError('TIDE_USAGE', '--compress applies to --trace.', { where: { arg: '--compress' } });
    }
    if (values.method !== undefined) options.method = values.method;
    if (values.path !== undefined) options.path = values.path;
    const body = bodyArg(values.body);
    if (body !== undefined) options.body = body;
    if (values['max-in-flight'] !== undefined) options.maxInFlight = numberArg(values['max-in-flight'], '--max-in-flight', 0, 1);
    if (values['max-lag'] !== undefined) options.maxLagMs = durationArg(values['max-lag'], '--max-lag', 1000);
    if (values.connections !== undefined) options.connections = Math.floor(numberArg(values.connections, '--connections', 100, 1));
    if (values.timeout !== undefined) options.timeoutMs = durationArg(values.timeout, '--timeout', 10_000);
    if (values.threads !== undefined) options.threads = values.threads === 'auto' ? 'auto' : numberArg(values.threads, '--threads', 1, 1);
    if (values.seed !== undefined) options.seed = numberArg(values.seed, '--seed', 1);

    const json = values.json === true;
    const quiet = json || values.quiet === true;
    const tty = process.stderr.isTTY === true;
    let lastLine = 0;
    const onProgress = quiet
      ? undefined
      : (p: Progress) => {
          if (tty) process.stderr.write(`\r${bar(p)}\x1b[K`);
          else if (p.elapsedMs - lastLine >= 5000) {
            lastLine = p.elapsedMs;
            process.stderr.write(`${bar(p)}\n`);
          }
        };
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    let summary;
    try {
      summary = await runLoad(options, { signal: abort.signal, ...(onProgress ? { onProgress, progressIntervalMs: tty ? 250 : 1000 } : {}) });
    } finally {
      process.removeListener('SIGINT', onSigint);
      if (onProgress && tty) process.stderr.write('\r\x1b[K');
    }
    const results = checkThresholds(thresholds, summary);
    if (json) process.stdout.write(`${JSON.stringify(summaryJson(summary, results))}\n`);
    else process.stdout.write(`${formatSummary(summary, results)}\n`);
    if (results.some((r) => !r.ok)) return 99;
    // nothing answered at all (refused, unreachable): not a crash, but not a success either
    if (summary.requests > 0 && Object.keys(summary.statusCodes).length === 0) return 1;
    return 0;
  },
};
