/**
 * `tide export <target>`: the project's tide.yaml as platform objects (Kubernetes, Compose,
 * ECS), alert rules or a dashboard. A thin shell over src/export.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { TideError } from '../../errors.js';
import { numberArg, parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide export <target> [options]

targets:
  kubernetes         Deployments, Services, PodDisruptionBudgets, and per autoscaled service an
                     HPA (autoscaling/v2), a KEDA ScaledObject, or the in-cluster tide autoscale
  compose            a Compose file: reverse proxy, deploy.replicas, stop_grace_period, autoscaler
  ecs                Application Auto Scaling requests (JSON): scalable targets, policies,
                     scheduled actions, alarms for step policies
  prometheus-rules   alert rules: no healthy replica, workers at max with a backlog, oldest job
                     age, queue depth, API p99, error rate, CPU, memory
  prometheus-config  a Prometheus scrape config for the running system (--platform), loading the
                     rules; every replica gets job="<project>-<service>" as the rules select
  grafana            a dashboard (JSON) for the same metrics

options:
  -c, --config <file>       the project file (default tide.yaml)
  -o, --output <file>       write to this file instead of stdout
  --json                    JSON instead of YAML (Kubernetes: a v1 List)
  --image <ref>             container image with tide as entrypoint (default <project>:latest,
                            what \`tide init --docker\`'s Dockerfile builds);
                            <service>=<ref> for one service (repeatable), e.g. a command service's own
  --namespace <ns>          Kubernetes namespace (default: the project name)
  --autoscaler <kind>       Kubernetes: auto (default), hpa, keda or tide for every service
  --cpu <quantity>          CPU request per replica, 100% utilisation (default 1)
  --memory-mib <n>          memory request and limit per replica, MiB (default 512)
  --cluster <name>          ECS cluster (default: the project name)
  --prometheus-url <url>    Prometheus for KEDA prometheus triggers
  --cloudwatch-namespace <ns>  CloudWatch namespace of the queue metrics (default Tidescale)
  --pod-monitors            Kubernetes: PodMonitor objects (Prometheus Operator) too
  --platform <p>            prometheus-config: local (default; a running tide up), compose, kubernetes
  --control-url <url>       prometheus-config local: tide up's control API (default: the running
                            one's, from the state directory, else control: in the config)
  --rules-file <path>       prometheus-config: the rule file to load (default tide-rules.yml)

What a platform cannot express is printed as a note on stderr. See docs/platforms/.`;

const AUTOSCALERS = ['auto', 'hpa', 'keda', 'tide'] as const;

/** The control API of the `tide up` running from this config, when one is (its control.json). */
async function runningControlUrl(configFile: string, stateDir: string): Promise<string | undefined> {
  const { readControlState } = await import('../../app/client.js');
  const state = await readControlState(path.resolve(path.dirname(configFile), stateDir));
  return state?.url;
}

export const command: Command = {
  summary: 'export the project as Kubernetes, Compose, ECS, Prometheus rules or a Grafana dashboard',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      config: { type: 'string', short: 'c', default: 'tide.yaml' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean', default: false },
      image: { type: 'string', multiple: true },
      namespace: { type: 'string' },
      autoscaler: { type: 'string' },
      cpu: { type: 'string' },
      'memory-mib': { type: 'string' },
      cluster: { type: 'string' },
      'prometheus-url': { type: 'string' },
      'cloudwatch-namespace': { type: 'string' },
      'pod-monitors': { type: 'boolean', default: false },
      platform: { type: 'string' },
      'control-url': { type: 'string' },
      'rules-file': { type: 'string' },
    });
    const [target, ...extra] = positionals;
    if (!target) throw new TideError('TIDE_USAGE', 'Name what to export: tide export <kubernetes|compose|ecs|prometheus-rules|prometheus-config|grafana>.', { where: { arg: 'target' } });
    if (extra.length) throw new TideError('TIDE_USAGE', `tide export takes one target, not also "${extra.join(' ')}".`, { where: { arg: extra[0]! } });
    const autoscaler = values.autoscaler ?? 'auto';
    if (!(AUTOSCALERS as readonly string[]).includes(autoscaler)) {
      throw new TideError('TIDE_USAGE', `--autoscaler takes ${AUTOSCALERS.join(', ')}, not "${autoscaler}".`, { where: { arg: '--autoscaler' } });
    }
    let image: string | undefined;
    const images: Record<string, string> = {};
    for (const value of values.image ?? []) {
      const perService = /^([a-z][a-z0-9-]{0,62})=(.+)$/.exec(value);
      if (perService) images[perService[1]!] = perService[2]!;
      else image = value;
    }
    const { EXPORTS, SCRAPE_PLATFORMS, exportConfig, isExportTarget, renderExport, unknownTarget } = await import('../../export/index.js');
    const platform = values.platform ?? 'local';
    if (!(SCRAPE_PLATFORMS as readonly string[]).includes(platform)) {
      throw new TideError('TIDE_USAGE', `--platform takes ${SCRAPE_PLATFORMS.join(', ')}, not "${platform}".`, { where: { arg: '--platform' } });
    }
    if (!isExportTarget(target)) throw unknownTarget(target);
    const { loadConfig } = await import('../../config/load.js');
    const config = await loadConfig(values.config);
    for (const name of Object.keys(images)) {
      if (!config.services[name]) throw new TideError('TIDE_USAGE', `--image ${name}=...: the config has no service "${name}".`, { where: { arg: '--image' } });
    }
    const configText = await readFile(values.config, 'utf8');
    const controlUrl = values['control-url'] ?? (target === 'prometheus-config' && platform === 'local' ? await runningControlUrl(values.config, config.stateDir) : undefined);
    const result = exportConfig(target, config, {
      configText,
      autoscaler: autoscaler as (typeof AUTOSCALERS)[number],
      ...(image ? { image } : {}),
      images,
      ...(values.namespace ? { namespace: values.namespace } : {}),
      ...(values.cpu ? { cpuRequest: values.cpu } : {}),
      ...(values['memory-mib'] ? { memoryMiB: numberArg(values['memory-mib'], '--memory-mib', 512, 1) } : {}),
      ...(values.cluster ? { cluster: values.cluster } : {}),
      ...(values['prometheus-url'] ? { prometheusUrl: values['prometheus-url'] } : {}),
      ...(values['cloudwatch-namespace'] ? { cloudwatchNamespace: values['cloudwatch-namespace'] } : {}),
      podMonitors: values['pod-monitors'],
      platform: platform as (typeof SCRAPE_PLATFORMS)[number],
      ...(controlUrl ? { controlUrl } : {}),
      ...(values['rules-file'] ? { rulesFile: values['rules-file'] } : {}),
    });
    const format = values.json ? 'json' : EXPORTS[target].format;
    const text = renderExport(result, format);
    for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
    if (values.output) {
      try {
        await writeFile(values.output, text);
      } catch (cause) {
        throw new TideError('TIDE_EXPORT_WRITE', `Cannot write ${values.output}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}.`, { where: { arg: '--output' }, cause });
      }
    } else {
      process.stdout.write(text);
    }
    return 0;
  },
};
