-- The decision journal: one row per control-loop decision (including holds and dry runs), so
-- `tide decisions` and the dashboard can say what the autoscaler did and why. Rows are kept
-- for a retention period; `at` is indexed for listing the newest first and for pruning.
CREATE TABLE :schema.decisions (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  service text NOT NULL,
  current integer NOT NULL,
  desired integer NOT NULL,
  ready integer NOT NULL,
  applied boolean NOT NULL,
  dry_run boolean NOT NULL DEFAULT false,
  paused boolean NOT NULL DEFAULT false,
  limited_by text,
  reasons jsonb NOT NULL,
  metrics jsonb NOT NULL,
  errors jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX decisions_service_at ON :schema.decisions (service, at DESC);
CREATE INDEX decisions_at ON :schema.decisions (at DESC);
