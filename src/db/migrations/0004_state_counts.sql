-- Queue figures in time independent of the backlog: the number of jobs stored as ready
-- (due, delayed, or waiting out a retry) and as active is kept exactly by the statements that
-- move jobs between states, in the sharded counter rows, instead of counted through the
-- indexes on every read. Readers split `pending` into due and not yet due by probing the
-- ready index (see sql/stats.ts).
ALTER TABLE :schema.queue_stats ADD COLUMN pending bigint NOT NULL DEFAULT 0, ADD COLUMN active bigint NOT NULL DEFAULT 0;

-- Seed the counts from the rows once. Writers of an older version may still be running: the
-- table lock makes them wait for this transaction, so the seed is exact when it commits.
LOCK TABLE :schema.jobs IN SHARE MODE;
UPDATE :schema.queue_stats s
SET pending = c.pending, active = c.active
FROM (
  SELECT queue, count(*) FILTER (WHERE state = 'ready') AS pending, count(*) FILTER (WHERE state = 'active') AS active
  FROM :schema.jobs WHERE state IN ('ready', 'active') GROUP BY queue
) c
WHERE s.queue = c.queue AND s.shard = (SELECT min(shard) FROM :schema.queue_stats m WHERE m.queue = c.queue);
