-- What the autoscaler's policies learned over hours (the SLO policy's arrivals per minute and
-- the period they repeat with), one row per service, so a restarted controller does not forget
-- a day's pattern. Written about once a minute by the controller, read once when it starts.
CREATE TABLE :schema.policy_memory (
  service text PRIMARY KEY,
  memory jsonb NOT NULL,
  updated_at timestamptz NOT NULL
);
