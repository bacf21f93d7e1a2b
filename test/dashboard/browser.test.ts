// End to end in headless Chromium (Debian's `chromium`, driven by playwright-core): a real
// system (startSystem: the balancer, 1 api and 1 worker replica on the test database, the
// control API serving the dashboard, the autoscaler in dry run attached to it), under a little
// load. The page loads, the charts draw live data (read from the uPlot instances, not
// pixels), the autoscaler's proposal shows in the timeline with its reasons, and the + button
// on the worker card scales it to 2 ready replicas. The test saves a screenshot.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { parseConfig } from '../../src/config/load.js';
import { createDashboard } from '../../src/dashboard/server.js';
import { startControl } from '../../src/app/control.js';
import { startSystem } from '../../src/app/system.js';
import { freshSchema } from '../helpers/db.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium): the dashboard browser test skips`;
if (missing) console.log(`note: ${missing}`);

test('dashboard in headless Chromium: live charts, the decision timeline, and a scale from the page', { skip: missing, timeout: 180_000 }, async () => {
  const db = await freshSchema('dashe2e');
  const dir = await mkdtemp(path.join(tmpdir(), 'tide-dashboard-'));
  const config = parseConfig(
    [
      'project: dashtest',
      `state_dir: ${JSON.stringify(dir)}`,
      `database: { url: ${JSON.stringify(db.url)}, schema: ${db.schema} }`,
      'balancer: { host: 127.0.0.1, port: 0, health_check: { interval_seconds: 1 } }',
      'control: { host: 127.0.0.1, port: 0 }',
      'autoscale: { interval_seconds: 1, dry_run: true }',
      'services:',
      '  api: { kind: api, replicas: 1, min: 1, max: 2, stop_grace_seconds: 5 }',
      '  worker:',
      '    kind: worker',
      '    replicas: 1',
      '    min: 1',
      '    max: 2',
      '    concurrency: 4',
      '    stop_grace_seconds: 5',
      '    queues: [default]',
      // proposes 2 workers whatever the depth: in dry run, a decision with reasons, never applied
      '    scale: { policies: [{ kind: steps, metric: queue_depth, up: [{ above: -1, set: 2 }] }] }',
    ].join('\n'),
    '<dashboard test>',
  );
  const system = await startSystem(config, { configDir: dir, log: () => {}, writeState: false, dashboardEager: true });
  // tide up's own autoscaler (dry run), which startSystem attaches to the dashboard
  assert.ok(system.autoscaler, 'the worker has a scale: block, so the system runs the autoscaler');

  // a trickle of jobs through the balancer, so the queue and API charts have something to draw
  let loading = true;
  const jobsUrl = `${system.balancer!.url}/v1/jobs`;
  const load = (async () => {
    while (loading) {
      const res = await fetch(jobsUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handler: 'sleep', payload: { ms: 150 } }) });
      await res.text();
      await new Promise((r) => setTimeout(r, 40));
    }
  })();

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // a CSP violation or a failed load shows as a console error
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    page.on('response', (r) => {
      if (r.status() >= 400) pageErrors.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`${system.control.url}/dashboard/`);
    await page.waitForSelector('#connection[data-state="live"]');

    // the charts draw live data: several points on the replica chart, API p95 and jobs/s values
    // (no named helpers inside page functions: tsx would wrap them in __name, which the page lacks;
    // and a function, not a string, since the page's CSP forbids eval)
    type ChartsWindow = { tideDashboard: { charts: Record<string, { data: Array<Array<number | null>> } | undefined> } };
    await page.waitForFunction(() => {
      const charts = (globalThis as unknown as ChartsWindow).tideDashboard.charts;
      return (
        (charts.replicas?.data[0]?.length ?? 0) >= 3 &&
        ['p95', 'jobs'].every((key) => (charts[key]?.data.slice(1).flat().filter((v) => v !== null && v > 0).length ?? 0) > 0)
      );
    });
    const lengths = (await page.evaluate(
      'Object.fromEntries(Object.entries(window.tideDashboard.charts).map(([k, u]) => [k, u.data[0].length]))',
    )) as Record<string, number>;
    assert.deepEqual(Object.keys(lengths).sort(), ['age', 'depth', 'errors', 'jobs', 'p95', 'replicas']);
    for (const [key, n] of Object.entries(lengths)) assert.ok(n >= 3, `${key} has ${n} points`);

    // the autoscaler's proposal, with its reasons, not applied (dry run)
    const proposal = page.locator('#timeline > li[data-service="worker"]').first();
    await proposal.waitFor();
    const proposalText = await proposal.innerText();
    assert.match(proposalText, /worker 1 → 2/);
    assert.match(proposalText, /by autoscaler \(not applied/);
    assert.match(await page.locator('article[data-service="worker"] .auto').innerText(), /autoscaler wants 2 · dry run/);

    // scale from the page: + on the worker card, then 2 ready
    const worker = page.locator('article[data-service="worker"]');
    assert.equal(await worker.getAttribute('data-ready'), '1');
    await worker.locator('button.plus').click();
    await page.waitForSelector('article[data-service="worker"][data-ready="2"][data-desired="2"]');
    assert.equal(system.supervisor.ps().services.find((s) => s.name === 'worker')!.healthy, 2);
    await page.waitForSelector('#timeline > li[data-service="worker"] code:text("ManualScale")');

    const shot = path.join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 10_000);
    console.log(`screenshot: ${shot}`);
    assert.deepEqual(pageErrors, []);
    if (process.env.TIDE_KEEP_SCREENSHOT) await import('node:fs/promises').then((fs) => fs.copyFile(shot, process.env.TIDE_KEEP_SCREENSHOT!));

    // a control API beyond loopback: the page asks for the token, then streams and scales with it
    const token = 'browser-test-token';
    const guardedErrors: string[] = [];
    const remoteDashboard = createDashboard({ supervisor: system.supervisor, info: () => ({ project: 'remote' }) });
    const remote = await startControl({ target: system.supervisor, host: '0.0.0.0', port: 0, token, onDown: () => {}, mount: (req, res, url, access) => remoteDashboard.handle(req, res, url, access) });
    try {
      const guarded = await browser.newPage();
      guarded.on('pageerror', (err) => guardedErrors.push(err.message));
      await guarded.goto(`${remote.url}/dashboard/`);
      await guarded.locator('#token-form').waitFor({ state: 'visible' });
      assert.equal(await guarded.locator('#connection').getAttribute('data-state'), 'error');
      await guarded.fill('#token-input', token);
      await guarded.click('#token-form button[type="submit"]');
      await guarded.waitForSelector('#connection[data-state="live"]');
      const card = guarded.locator('article[data-service="worker"][data-ready="2"]');
      await card.waitFor();
      await card.locator('button.minus').click();
      await guarded.waitForSelector('article[data-service="worker"][data-ready="1"][data-desired="1"]');
      assert.equal(system.supervisor.ps().services.find((s) => s.name === 'worker')!.desired, 1);
      assert.ok(!(await guarded.content()).includes(token), 'the token is not written into the page');
      await guarded.close();
    } finally {
      await remoteDashboard.close();
      await remote.close();
    }
    assert.deepEqual(guardedErrors, []);
  } finally {
    await browser.close();
    loading = false;
    await load;
    await system.stop('test over');
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
});
