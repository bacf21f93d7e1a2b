/**
 * The commented starter `tide.yaml` that `tide init` writes. A test checks it validates, so
 * it cannot drift from the schema.
 */

/** The starter file's text for a project name. */
export function starterConfig(project: string): string {
  return `# tide.yaml: the Tidescale project file. Every field and its default: docs/config.md.
# Editors: \`tide schema > tide.schema.json\` gives a JSON Schema for completion and checks.
project: ${project}

# Where tide keeps the embedded database, logs and run state.
state_dir: .tide

database:
  # Absent url: an embedded PostgreSQL under state_dir. To use your own server, keep the
  # secret out of this file and read it from the environment:
  # url: \${DATABASE_URL}
  schema: tide
  # Behind PgBouncer in transaction mode (detected; or say so: pooler: pgbouncer). Workers then
  # poll, unless a URL that bypasses the pooler is given for LISTEN:
  # direct_url: \${DATABASE_DIRECT_URL}
  # Connections per replica (API 10, worker 4); tide up refuses when the services at their max
  # replicas would open more than the server's max_connections (docs/queue.md).
  # pool_size: 4

# The HTTP load balancer in front of the API replicas.
balancer:
  port: 8080
  health_check:
    interval_seconds: 2
    timeout_seconds: 1
    fails: 2      # consecutive failed checks before a replica is taken out
    passes: 1     # consecutive passing checks before it is put back
  # Per-client rate limit (429 with Retry-After over it):
  # rate_limit:
  #   requests_per_second: 50
  #   burst: 100
  # Proxies in front (addresses or CIDRs) whose X-Forwarded-For names the client; from
  # anyone else the header is ignored (docs/security.md):
  # trusted_proxies: [10.0.0.0/8]

# The control API (tide status, tide scale, the dashboard). Bound to loopback; to bind it
# elsewhere, set a token: token: \${TIDE_CONTROL_TOKEN}
control:
  host: 127.0.0.1
  port: 8079

services:
  api:
    kind: api             # runs \`tide api\`: accepts and reports jobs
    replicas: 2
    min: 1
    max: 4
    port: 3000            # replicas get consecutive free ports from here
    health: /health
  worker:
    kind: worker          # runs \`tide worker\`: takes jobs from the queue
    replicas: 1
    min: 1
    max: 8
    concurrency: 10       # jobs each replica runs at once
    stop_grace_seconds: 30
    # handlers: ./handlers.js   # your module of job handlers (default: the built-in demo ones)
    # Autoscaling, between min and max above. The promise: 95% of jobs start within 30 s;
    # tide works out the replicas from the arrival rate and service time it measures.
    scale:
      policies:
        - kind: slo
          waitSeconds: 30
          attainment: 0.95
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 300   # scale in only on 5 minutes of lower demand
`;
}
