/**
 * `tide plan`: a thin shell over runPlan (src/plan). Measures one worker of a handler (and
 * optionally one API instance) on a short automatic ramp, then prints the capacity table:
 * jobs/s -> workers and API instances needed for the SLO. `--json`: one object, last line.
 */
import { TideError } from '../../errors.js';
import { parseDuration } from '../../load/stages.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide plan [options]

Measures one worker running a handler (a real worker in this process, on DATABASE_URL or the
embedded PostgreSQL, in a schema of its own dropped afterwards) on a short automatic ramp, then
prints how many workers each arrival rate needs for the SLO, from the SLO policy's queueing
model (Erlang C with the measured mean and variability of the service time). With --api or
--latency-p95, also measures one API instance's requests/s within a p95 target and adds the
API instances needed.

  --handler NAME        the job handler (default sleep; hash, sleep, or one of --handlers)
  --payload JSON        its payload (default {"mean_ms":200,"cv":1})
  --handlers FILE       a module of your handlers
  --concurrency N       jobs per worker at once (default 10)
  --wait S              the SLO's wait bound, seconds (default 10)
  --attainment F        share of jobs that must start within it (default 0.99)
  --rates LIST          jobs/s for the table (default 10,50,100,500)
  --api URL             measure this API (default: an in-process one, when --latency-p95 is given)
  --latency-p95 D       the API's latency target (200ms, 1s; default 200ms with --api)
  --max-seconds S       bound on the worker measurement (default 30)
  --json                the result as one JSON object on the last stdout line
  --quiet               no progress on stderr`;

export const command: Command = {
  summary: 'measure one worker (and API instance) and print the replicas each rate needs',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        handler: { type: 'string' },
        payload: { type: 'string' },
        handlers: { type: 'string' },
        concurrency: { type: 'string' },
        wait: { type: 'string' },
        attainment: { type: 'string' },
        rates: { type: 'string' },
        api: { type: 'string' },
        'latency-p95': { type: 'string' },
        'max-seconds': { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
      false,
    );
    void positionals;
    let payload: unknown;
    try {
      payload = JSON.parse(values.payload ?? '{"mean_ms":200,"cv":1}');
    } catch (cause) {
      throw new TideError('TIDE_USAGE', `--payload is not JSON: ${(cause as Error).message}.`, { where: { arg: '--payload' }, cause });
    }
    const rates = (values.rates ?? '10,50,100,500').split(',').map((r) => Number(r.trim()));
    if (rates.some((r) => !Number.isFinite(r) || r < 0)) {
      throw new TideError('TIDE_USAGE', `--rates takes numbers >= 0 separated by commas (10,50,100), not "${values.rates}".`, { where: { arg: '--rates' } });
    }
    let latencyP95Ms: number | undefined;
    if (values['latency-p95'] !== undefined) {
      latencyP95Ms = parseDuration(values['latency-p95']);
      if (latencyP95Ms === undefined || !(latencyP95Ms > 0)) {
        throw new TideError('TIDE_USAGE', `--latency-p95 takes a duration such as 200ms or 1s, not "${values['latency-p95']}".`, { where: { arg: '--latency-p95' } });
      }
    }
    const quiet = values.json === true || values.quiet === true;
    const log = quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
    const [{ runPlan, formatPlan, planJson }, { loadHandlers }] = await Promise.all([import('../../plan/run.js'), import('../../runtime/handlers/index.js')]);
    const handlers = values.handlers ? await loadHandlers(values.handlers) : undefined;
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    try {
      const result = await runPlan({
        handler: values.handler ?? 'sleep',
        payload,
        concurrency: numberArg(values.concurrency, '--concurrency', 10, 1),
        waitSeconds: numberArg(values.wait, '--wait', 10, 0),
        attainment: numberArg(values.attainment, '--attainment', 0.99, 0),
        rates,
        ...(handlers ? { handlers } : {}),
        ...(values.api !== undefined || latencyP95Ms !== undefined ? { api: { ...(values.api !== undefined ? { url: values.api } : {}), latencyP95Ms: latencyP95Ms ?? 200 } } : {}),
        maxSeconds: numberArg(values['max-seconds'], '--max-seconds', 30, 1),
        ...(log ? { log } : {}),
        signal: abort.signal,
      });
      process.stdout.write(values.json ? `${JSON.stringify(planJson(result))}\n` : `${formatPlan(result)}\n`);
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
