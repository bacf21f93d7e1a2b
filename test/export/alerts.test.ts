/**
 * The exports in the real tools: a real Prometheus (Debian package) loads the config of
 * `tide export prometheus-config` and the rules of `tide export prometheus-rules`, scrapes a
 * real `tide up` (startSystem: real API and worker processes, real PostgreSQL) through the
 * control API's service discovery, and
 *
 * - with the system healthy, every rule evaluates without error and no alert is pending or firing;
 * - each alert's condition, induced on the running system, brings that alert to `firing`
 *   (API latency and errors through a user's routes plugin, memory held by an API route and a
 *   job, CPU kept busy by an API route and a job against rules exported for 25m of a core,
 *   a backlog with the workers held at their max, the oldest job past the SLO's wait,
 *   thousands of jobs waiting, no healthy replica);
 * - every query of every panel of `tide export grafana` returns data.
 *
 * Test-only changes to the exported files, and nothing else: `for:` becomes 0s and the scrape and
 * evaluation intervals 1 s, so the test takes a minute rather than ten.
 * The CPU alert is not induced here (see the note at the end of the test).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseConfig } from '../../src/config/load.js';
import { exportConfig, renderExport } from '../../src/export/index.js';
import { startSystem } from '../../src/app/system.js';
import { freshSchema } from '../helpers/db.js';
import { prometheusSkip as skip, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';

if (skip) console.log(`note: ${skip}; the exported alerts test skips`);

const ROUTES = fileURLToPath(new URL('../fixtures/alert-routes.mjs', import.meta.url));
const HANDLERS = fileURLToPath(new URL('../fixtures/alert-handlers.mjs', import.meta.url));

type Rule = { alert: string; expr: string; for: string; labels: Record<string, string> };
type Alert = { labels: Record<string, string>; state: string };

/** An alert as `<name> <severity> <service>`, from an alert's labels or a rule. */
const key = (labels: Record<string, string>) => `${labels.alertname} ${labels.severity} ${labels.service}`;
const ruleKey = (rule: Rule) => key({ ...rule.labels, alertname: rule.alert });

async function alerts(p: RunningPrometheus): Promise<Alert[]> {
  const res = await fetch(`${p.url}/api/v1/alerts`);
  return ((await res.json()) as { data: { alerts: Alert[] } }).data.alerts;
}

async function ruleGroups(p: RunningPrometheus): Promise<Array<{ rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }>> {
  const res = await fetch(`${p.url}/api/v1/rules`);
  return ((await res.json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> } }).data.groups;
}

/** Polls `check` every 250 ms until it returns true, up to `ms`; fails with `what()` otherwise. */
async function until(ms: number, check: () => Promise<boolean>, what: () => string | Promise<string>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(await what());
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('exported scrape config, rules and dashboard on a real Prometheus scraping a real tide up: silent when healthy, each alert fires on its condition, every panel has data', { skip, timeout: 180_000 }, async () => {
  const db = await freshSchema('alerts');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-alerts-'));
  const config = parseConfig(
    [
      'project: alerts',
      `database: { url: "${db.url}", schema: ${db.schema} }`,
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
      'control: { port: 0 }',
      // the SLO policy sets the oldest-job threshold; the autoscaler only decides, so the test holds the counts
      'autoscale: { dry_run: true }',
      'services:',
      '  api: { kind: api, replicas: 1, min: 0, max: 1, stop_grace_seconds: 1 }',
      '  worker:',
      '    kind: worker',
      '    replicas: 1',
      '    min: 0',
      '    max: 2',
      '    concurrency: 2',
      '    stop_grace_seconds: 2',
      `    handlers: "${HANDLERS}"`,
      '    scale:',
      '      policies: [{ kind: slo, waitSeconds: 3, attainment: 0.95, concurrency: 2 }]',
    ].join('\n'),
    path.join(dir, 'tide.yaml'),
  );
  const system = await startSystem(config, { configDir: dir, log: () => {}, apiArgs: ['--routes', ROUTES], writeState: false });
  let prometheus: RunningPrometheus | undefined;
  try {
    const balancer = system.balancer!.url;
    // exported for replicas given a fortieth of a core (25m), so a replica kept busy is soon past
    // it; idle replicas use about a tenth of that
    const rulesDoc = exportConfig('prometheus-rules', config, { cpuRequest: '25m' }).documents[0]!.body as { groups: Array<{ rules: Rule[] }> };
    const rules = rulesDoc.groups.flatMap((g) => g.rules);
    // 3 s, not 0: one scrape slower than the 1 s interval on a busy machine is not an outage
    for (const rule of rules) rule.for = '3s';
    const scrape = exportConfig('prometheus-config', config, { platform: 'local', controlUrl: system.control.url, rulesFile: 'rules.yml' });
    const body = scrape.documents[0]!.body as { global: Record<string, string>; scrape_configs: Array<Record<string, unknown>> };
    body.global = { scrape_interval: '1s', evaluation_interval: '1s' };
    for (const job of body.scrape_configs) job.scrape_interval = '1s';
    prometheus = await startPrometheus({
      config: renderExport(scrape, 'yaml'),
      files: { 'rules.yml': renderExport({ documents: [{ body: rulesDoc }], notes: [] }, 'yaml') },
      // both services found through the control API and scraped under the jobs the rules select
      ready: async (p) => ((await p.query('count(up{job=~"alerts-api|alerts-worker", service=~"api|worker"} == 1)')) as Array<{ value: [number, string] }>)[0]?.value[1] === '2',
    });
    const p = prometheus;

    // healthy: some jobs done, then every rule evaluated a few times with no error and no alert
    const jobs = (n: number, payload: Record<string, unknown>, handler: string) => ({ jobs: Array.from({ length: n }, () => ({ handler, payload })) });
    const post = async (n: number, payload: Record<string, unknown>, handler = 'sleep') => {
      const res = await fetch(`${balancer}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(jobs(n, payload, handler)) });
      assert.equal(res.status, 202, await res.text());
    };
    await post(20, { ms: 5 });
    await until(30_000, async () => ((await p.query('max(tide_queue_completions_total)')) as Array<{ value: [number, string] }>)[0]?.value[1] === '20', () => 'the 20 jobs completed and were scraped');
    const since = Date.now() + 3000;
    await until(
      30_000,
      async () => (await ruleGroups(p)).every((g) => g.rules.every((r) => Date.parse(r.lastEvaluation) > since)),
      () => 'every rule evaluated 3 s after the jobs completed',
    );
    for (const rule of (await ruleGroups(p)).flatMap((g) => g.rules)) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
    assert.deepEqual((await alerts(p)).map((a) => `${key(a.labels)} ${a.state}`), [], 'no alert on a healthy system');

    // every panel query of the dashboard returns data for the running system
    const fired = new Set<string>();
    const record = async () => {
      for (const a of await alerts(p)) if (a.state === 'firing') fired.add(key(a.labels));
    };
    const expectFiring = async (names: string[]) =>
      until(
        30_000,
        async () => {
          await record();
          return names.every((n) => fired.has(n));
        },
        async () =>
          `firing: ${names.filter((n) => !fired.has(n)).join(', ')} not seen (seen: ${[...fired].join(', ')}); the rules now: ${JSON.stringify(
            await Promise.all(rules.filter((r) => names.includes(ruleKey(r))).map(async (r) => [r.expr, await p.query(r.expr.replace(/ > [^>]*$/, ''))])),
          )}; worker log: ${system.supervisor.logs('worker', 20).map((l) => l.line).join('\n')}`,
      );

    // API latency and errors: slow and failing requests of the user's routes, through the
    // balancer. One of each first, scraped, so their series exist before the burst: a counter
    // series first seen at its burst's total has no increase for rate() to see.
    assert.equal((await fetch(`${balancer}/fail`)).status, 500);
    assert.equal((await fetch(`${balancer}/slow?ms=1`)).status, 200);
    await until(10_000, async () => ((await p.query('http_request_duration_seconds_count{job="alerts-api",route=~"/fail|/slow"}')) as unknown[]).length === 2, () => 'the /fail and /slow series scraped');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const slow = Array.from({ length: 6 }, () => fetch(`${balancer}/slow?ms=3000`).then((r) => r.text()));
    for (let i = 0; i < 40; i++) assert.equal((await fetch(`${balancer}/fail`)).status, 500);
    await Promise.all(slow);
    await expectFiring(['TideApiErrorRate warning api', 'TideApiLatencyP99 warning api', 'TideApiLatencyP99 critical api']);

    // memory: an API replica and a worker replica each holding 500 MiB, past 80 % and 90 % of
    // the 512 MiB the rules were exported for (the default --memory-mib)
    await post(1, { mb: 500, ms: 60_000 }, 'hold');
    assert.equal((await fetch(`${balancer}/hog?mb=500`)).status, 200);
    await expectFiring(['TideHighMemory warning api', 'TideHighMemory critical api', 'TideHighMemory warning worker', 'TideHighMemory critical worker']);
    assert.equal((await fetch(`${balancer}/hog?mb=0`)).status, 200);
    await until(10_000, async () => (await fetch(`${balancer}/health`)).status === 200, () => 'the API answers through the balancer again');

    // CPU: work that keeps an API replica and a worker replica busy, until both CPU alerts fire
    const cpuAlerts = ['TideHighCPU warning api', 'TideHighCPU critical api', 'TideHighCPU warning worker', 'TideHighCPU critical worker'];
    await until(
      90_000,
      async () => {
        // about as much work a round as a round lasts, so no backlog builds up
        await post(1, { ms: 1000 }, 'burn');
        assert.equal((await fetch(`${balancer}/burn?ms=1000`)).status, 200);
        await record();
        return cpuAlerts.every((n) => fired.has(n));
      },
      async () => `firing: ${cpuAlerts.filter((n) => !fired.has(n)).join(', ')} not seen; CPU now: ${JSON.stringify(await p.query('rate(process_cpu_seconds_total[5m])'))}`,
    );
    await until(30_000, async () => ((await p.query('max(tide_queue_ready)')) as Array<{ value: [number, string] }>)[0]?.value[1] === '0', () => 'the burn jobs started');

    // a backlog with the workers held at their max: 8 long jobs fill the 4 slots, thousands wait behind them
    const scale = async (replicas: Record<string, number>) => {
      const res = await fetch(`${system.control.url}/v1/scale`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ replicas }) });
      assert.equal(res.status, 200, await res.text());
    };
    await scale({ worker: 2 });
    await post(8, { ms: 60_000 });
    for (let i = 0; i < 6; i++) await post(1000, { ms: 1 });
    await expectFiring(['TideWorkersAtMax warning worker', 'TideQueueDepthHigh warning worker', 'TideQueueDepthHigh critical worker', 'TideOldestJobAge warning worker']);

    // the dashboard, now that every kind of series has data
    const dashboard = exportConfig('grafana', config).documents[0]!.body as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    assert.ok(dashboard.panels.length >= 8, `${dashboard.panels.length} panels`);
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const result = (await p.query(target.expr)) as unknown[];
        assert.ok(Array.isArray(result) && result.length > 0, `panel "${panel.title}": ${target.expr} returned no data`);
      }
    }

    // no healthy replica: the workers scaled to zero while jobs wait (the API still reports the
    // queue), then the API too
    assert.deepEqual([...fired].filter((k) => k.startsWith('TideNoHealthyReplica')), [], 'every replica answered its scrapes until now');
    await scale({ worker: 0 });
    await expectFiring(['TideNoHealthyReplica critical worker']);
    await scale({ api: 0 });
    await expectFiring(['TideNoHealthyReplica critical api']);

    // every exported alert has now been seen firing
    const exported = new Set(rules.map(ruleKey));
    assert.deepEqual([...exported].filter((k) => !fired.has(k)), [], 'every induced alert was seen firing');
  } finally {
    await prometheus?.stop();
    await system.stop();
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});
