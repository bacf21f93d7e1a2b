/**
 * `tide export ecs`: Application Auto Scaling requests for ECS services, as the JSON bodies of
 * `RegisterScalableTarget`, `PutScalingPolicy`, `PutScheduledAction`, and CloudWatch
 * `PutMetricAlarm` for step policies (a step policy acts only when an alarm invokes it).
 *
 * Mapping: a target on CPU or memory utilisation is target tracking on the predefined
 * ECSServiceAverage*Utilization metric; a per-replica (`average`) target on queue depth is
 * target tracking on "backlog per task" (queue depth / RunningTaskCount, metric math), AWS's
 * own recipe for queue workers; other targets track a customized metric. `steps` become one
 * step policy per direction, `schedule` scheduled actions. The `slo` policy has no AWS
 * equivalent: such a service needs `tide autoscale` with the ECS actuator, and the export
 * says so instead of inventing a threshold.
 */
import type { ServiceConfig, TideConfig } from '../config/schema.js';
import type { ScheduleEntry, StepsPolicy, TargetPolicy } from '../core/types.js';
import { METRIC } from '../core/types.js';
import { TideError } from '../errors.js';
import type { ExportOptions, ExportResult } from './types.js';
import { policyLabel, queuesOf } from './workload.js';

type Obj = Record<string, unknown>;

/** AWS's default cooldown for ECS scaling policies, seconds. */
const DEFAULT_COOLDOWN = 300;

/** CloudWatch metric names the queue metrics are expected under (published by the user's agent). */
const CLOUDWATCH_NAME: Record<string, string> = {
  [METRIC.queueDepth]: 'QueueDepth',
  [METRIC.oldestAge]: 'OldestJobAgeSeconds',
};

interface Target {
  ServiceNamespace: 'ecs';
  ResourceId: string;
  ScalableDimension: 'ecs:service:DesiredCount';
}

function customMetrics(service: ServiceConfig, metric: string, namespace: string): Array<{ Namespace: string; MetricName: string; Dimensions: Obj[] }> {
  const name = CLOUDWATCH_NAME[metric] ?? metric;
  const queues = metric in CLOUDWATCH_NAME ? queuesOf(service) : undefined;
  if (!queues) return [{ Namespace: namespace, MetricName: name, Dimensions: [] }];
  return queues.map((q) => ({ Namespace: namespace, MetricName: name, Dimensions: [{ Name: 'Queue', Value: q }] }));
}

function targetTracking(config: TideConfig, service: ServiceConfig, t: TargetPolicy, options: ExportOptions): Obj {
  if (t.metric === METRIC.cpu || t.metric === METRIC.memory) {
    const predefined = t.metric === METRIC.cpu ? 'ECSServiceAverageCPUUtilization' : 'ECSServiceAverageMemoryUtilization';
    return { TargetValue: t.type === 'utilization' ? Math.round(t.target * 100) : t.target * 100, PredefinedMetricSpecification: { PredefinedMetricType: predefined } };
  }
  const metrics = customMetrics(service, t.metric, options.cloudwatchNamespace);
  const stat = t.metric === METRIC.oldestAge ? 'Maximum' : 'Average';
  if (t.type === 'average' && t.metric === METRIC.queueDepth) {
    // backlog per task: the queue (summed over its queues) over the running tasks
    const names = ecsNames(config, service, options);
    const parts: Obj[] = metrics.map((m, i) => ({ Id: `q${i}`, MetricStat: { Metric: m, Stat: 'Average' }, ReturnData: false }));
    parts.push({
      Id: 'tasks',
      MetricStat: {
        Metric: {
          Namespace: 'ECS/ContainerInsights',
          MetricName: 'RunningTaskCount',
          Dimensions: [
            { Name: 'ClusterName', Value: names.cluster },
            { Name: 'ServiceName', Value: names.name },
          ],
        },
        Stat: 'Average',
      },
      ReturnData: false,
    });
    const sum = metrics.map((_, i) => `q${i}`).join(' + ');
    parts.push({ Id: 'backlog_per_task', Expression: `(${sum}) / tasks`, Label: 'Backlog per task', ReturnData: true });
    return { TargetValue: t.target, CustomizedMetricSpecification: { Metrics: parts } };
  }
  if (metrics.length === 1) {
    const m = metrics[0]!;
    return { TargetValue: t.target, CustomizedMetricSpecification: { MetricName: m.MetricName, Namespace: m.Namespace, Dimensions: m.Dimensions, Statistic: stat } };
  }
  const parts: Obj[] = metrics.map((m, i) => ({ Id: `q${i}`, MetricStat: { Metric: m, Stat: stat }, ReturnData: false }));
  const combine = stat === 'Maximum' ? `MAX([${metrics.map((_, i) => `q${i}`).join(', ')}])` : metrics.map((_, i) => `q${i}`).join(' + ');
  parts.push({ Id: 'combined', Expression: combine, ReturnData: true });
  return { TargetValue: t.target, CustomizedMetricSpecification: { Metrics: parts } };
}

type Step = { bound: number; kind: 'add' | 'set' | 'percent'; amount: number };

function adjustmentType(steps: Step[], where: string, config: TideConfig): string {
  const kinds = new Set(steps.map((s) => s.kind));
  if (kinds.size > 1) {
    throw new TideError('TIDE_EXPORT_UNSUPPORTED', `${where}: an AWS step policy has one adjustment type; these steps mix ${[...kinds].join(' and ')}.`, {
      where: { file: config.file, field: where },
    });
  }
  const kind = [...kinds][0];
  return kind === 'set' ? 'ExactCapacity' : kind === 'percent' ? 'PercentChangeInCapacity' : 'ChangeInCapacity';
}

function stepPolicies(config: TideConfig, service: ServiceConfig, p: StepsPolicy, index: number, target: Target, options: ExportOptions, out: { policies: Obj[]; alarms: Obj[] }): void {
  const field = `services.${service.name}.scale.policies[${index}]`;
  const metric = customMetrics(service, p.metric, options.cloudwatchNamespace);
  const behavior = service.scale?.behavior;
  const directions = [
    {
      dir: 'up' as const,
      steps: (p.up ?? []).map((s): Step => ({ bound: s.above, ...(s.set !== undefined ? { kind: 'set', amount: s.set } : s.percent !== undefined ? { kind: 'percent', amount: s.percent } : { kind: 'add', amount: s.add ?? 0 }) })),
      cooldown: behavior?.scaleUp?.cooldownSeconds,
    },
    {
      dir: 'down' as const,
      steps: (p.down ?? []).map((s): Step => ({ bound: s.below, ...(s.set !== undefined ? { kind: 'set', amount: s.set } : s.percent !== undefined ? { kind: 'percent', amount: -s.percent } : { kind: 'add', amount: -(s.remove ?? 0) }) })),
      cooldown: behavior?.scaleDown?.cooldownSeconds,
    },
  ];
  for (const { dir, steps, cooldown } of directions) {
    if (steps.length === 0) continue;
    const type = adjustmentType(steps, `${field}.${dir}`, config);
    // bounds are relative to the alarm's threshold: the lowest `above`, the highest `below`
    const sorted = [...steps].sort((a, b) => (dir === 'up' ? a.bound - b.bound : b.bound - a.bound));
    const threshold = sorted[0]!.bound;
    const adjustments = sorted.map((s, i) => {
      const next = sorted[i + 1];
      return dir === 'up'
        ? { MetricIntervalLowerBound: s.bound - threshold, ...(next ? { MetricIntervalUpperBound: next.bound - threshold } : {}), ScalingAdjustment: s.amount }
        : { MetricIntervalUpperBound: s.bound - threshold, ...(next ? { MetricIntervalLowerBound: next.bound - threshold } : {}), ScalingAdjustment: s.amount };
    });
    const name = `${config.project}-${service.name}-${p.name ?? `steps${index}`}-${dir}`;
    out.policies.push({
      PolicyName: name,
      ...target,
      PolicyType: 'StepScaling',
      StepScalingPolicyConfiguration: { AdjustmentType: type, StepAdjustments: adjustments, Cooldown: cooldown ?? DEFAULT_COOLDOWN, MetricAggregationType: 'Average' },
    });
    if (metric.length > 1) {
      throw new TideError('TIDE_EXPORT_UNSUPPORTED', `${field}: a CloudWatch alarm watches one metric; the service takes from ${metric.length} queues (publish their sum as one metric).`, {
        where: { file: config.file, field },
      });
    }
    const m = metric[0]!;
    out.alarms.push({
      AlarmName: name,
      Namespace: m.Namespace,
      MetricName: m.MetricName,
      Dimensions: m.Dimensions,
      Statistic: 'Average',
      Period: 60,
      EvaluationPeriods: 1,
      Threshold: threshold,
      ComparisonOperator: dir === 'up' ? 'GreaterThanThreshold' : 'LessThanThreshold',
      // PutScalingPolicy answers with the policy's ARN; it goes here
      AlarmActions: [`<PolicyARN of ${name}>`],
    });
  }
}

/** AWS day-of-week numbers are 1-7 from Sunday; cron's are 0-7 from Sunday. */
function awsDayOfWeek(field: string): string {
  return field.replace(/\d+/g, (d) => String((Number(d) % 7) + 1));
}

/** A five-field cron as AWS's six-field `cron(...)`, or undefined when AWS cannot say it. */
export function awsCron(cron: string): string | undefined {
  const f = cron.trim().split(/\s+/);
  if (f.length !== 5) return undefined;
  const [min, hour, dom, mon, dow] = f as [string, string, string, string, string];
  // AWS wants `?` in one of day-of-month and day-of-week
  if (dom !== '*' && dow !== '*') return undefined;
  const days = dow === '*' ? `${dom} ${mon} ?` : `? ${mon} ${awsDayOfWeek(dow)}`;
  return `cron(${min} ${hour} ${days} *)`;
}

/** The cron of when a window ends, when its start has a fixed minute and hour and every day alike. */
function endCron(entry: ScheduleEntry): string | undefined {
  if (entry.durationSeconds === undefined) return undefined;
  const f = entry.cron.trim().split(/\s+/);
  const [min, hour, dom, mon, dow] = f;
  if (!/^\d+$/.test(min ?? '') || !/^\d+$/.test(hour ?? '') || dom !== '*' || mon !== '*' || dow !== '*') return undefined;
  const end = (Number(hour) * 60 + Number(min) + Math.round(entry.durationSeconds / 60)) % (24 * 60);
  return `cron(${end % 60} ${Math.floor(end / 60)} * * ? *)`;
}

/**
 * The ECS cluster and service a Tidescale service runs as: --cluster, else the service's `ecs`
 * actuator (its `cluster` and `services` name map), else the project and service names.
 */
export function ecsNames(config: TideConfig, service: ServiceConfig, options: ExportOptions): { cluster: string; name: string } {
  const actuator = service.actuator?.kind === 'ecs' ? service.actuator : undefined;
  const actuatorCluster = typeof actuator?.cluster === 'string' ? actuator.cluster : undefined;
  const names = actuator?.services && typeof actuator.services === 'object' ? (actuator.services as Record<string, unknown>) : {};
  const mapped = names[service.name];
  return { cluster: options.cluster ?? actuatorCluster ?? config.project, name: typeof mapped === 'string' ? mapped : service.name };
}

/** The Application Auto Scaling requests for every autoscaled service (one JSON document). */
export function exportEcs(config: TideConfig, options: ExportOptions): ExportResult {
  const notes: string[] = [];
  const targets: Obj[] = [];
  const out = { policies: [] as Obj[], alarms: [] as Obj[] };
  const scheduled: Obj[] = [];
  for (const service of Object.values(config.services)) {
    const policy = service.scale;
    if (!policy) continue;
    const { cluster, name } = ecsNames(config, service, options);
    const target: Target = { ServiceNamespace: 'ecs', ResourceId: `service/${cluster}/${name}`, ScalableDimension: 'ecs:service:DesiredCount' };
    targets.push({ ...target, MinCapacity: policy.min, MaxCapacity: policy.max });
    policy.policies.forEach((p, i) => {
      if (p.kind === 'target') {
        const tracking = targetTracking(config, service, p, options);
        const up = policy.behavior?.scaleUp?.cooldownSeconds;
        const down = policy.behavior?.scaleDown?.cooldownSeconds;
        out.policies.push({
          PolicyName: `${config.project}-${service.name}-${p.name ?? `target${i}`}`,
          ...target,
          PolicyType: 'TargetTrackingScaling',
          TargetTrackingScalingPolicyConfiguration: { ...tracking, ScaleOutCooldown: up ?? DEFAULT_COOLDOWN, ScaleInCooldown: down ?? DEFAULT_COOLDOWN, DisableScaleIn: false },
        });
      } else if (p.kind === 'steps') {
        stepPolicies(config, service, p, i, target, options, out);
      } else {
        notes.push(`${service.name}: ${policyLabel(p, i)} has no Application Auto Scaling equivalent; run tide autoscale with the ecs actuator for this service`);
      }
    });
    if (policy.behavior?.scaleUp?.stabilizationWindowSeconds !== undefined || policy.behavior?.scaleDown?.stabilizationWindowSeconds !== undefined) {
      notes.push(`${service.name}: stabilization windows have no ECS equivalent; the policies use cooldowns (default ${DEFAULT_COOLDOWN} s)`);
    }
    policy.schedule?.forEach((entry, i) => {
      const field = `services.${service.name}.scale.schedule[${i}].cron`;
      const schedule = awsCron(entry.cron);
      if (!schedule) {
        throw new TideError('TIDE_EXPORT_UNSUPPORTED', `${field}: "${entry.cron}" names both a day of the month and a day of the week, which AWS cron cannot.`, {
          where: { file: config.file, field },
        });
      }
      const base = { ServiceNamespace: 'ecs', ResourceId: target.ResourceId, ScalableDimension: target.ScalableDimension, ...(entry.timezone ? { Timezone: entry.timezone } : {}) };
      scheduled.push({
        ...base,
        ScheduledActionName: `${config.project}-${service.name}-schedule${i}`,
        Schedule: schedule,
        ScalableTargetAction: { MinCapacity: entry.min ?? policy.min, MaxCapacity: entry.max ?? policy.max },
      });
      if (entry.durationSeconds !== undefined) {
        const end = endCron(entry);
        if (end) {
          scheduled.push({ ...base, ScheduledActionName: `${config.project}-${service.name}-schedule${i}-end`, Schedule: end, ScalableTargetAction: { MinCapacity: policy.min, MaxCapacity: policy.max } });
        } else {
          notes.push(`${service.name}: schedule[${i}] lasts ${entry.durationSeconds} s from "${entry.cron}"; its end is not a fixed daily time, so add the action that restores min/max yourself`);
        }
      }
    });
  }
  const body: Obj = {
    registerScalableTargets: targets,
    putScalingPolicies: out.policies,
    ...(scheduled.length ? { putScheduledActions: scheduled } : {}),
    ...(out.alarms.length ? { putMetricAlarms: out.alarms } : {}),
  };
  return { documents: [{ body }], notes };
}
