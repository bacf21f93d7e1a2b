-- Queue figures in time independent of the backlog: the number of jobs stored as ready
-- (due, delayed, or waiting out a retry) and as active is kept exactly by the statements that
-- move jobs between states, in the sharded counter rows, instead of counted through the
-- indexes on every read.
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

-- The figures of every queue, in time independent of the backlog. Pending splits into due
-- and not yet due (delayed, or failed waiting out a retry) by walking the ready index one
-- priority at a time: per priority, one probe finds its earliest run_at (the oldest due job,
-- when it is due) and a range scan counts the jobs not yet due. The cost grows with the
-- number of distinct priorities and of jobs scheduled for later, not with the ready backlog.
-- The service-time histogram has 15 buckets (14 bounds and +Inf), summed by position over
-- the shards. A filter on queue is pushed down into both halves.
CREATE VIEW :schema.queue_figures_view AS
SELECT s.*, w.delayed, w.failed, w.oldest_age
FROM (
  SELECT st.queue, sum(st.arrivals) AS arrivals, sum(st.completions) AS completions, sum(st.failures) AS failures,
         sum(st.completed) AS completed, sum(st.dead) AS dead, sum(st.pending) AS pending, sum(st.active) AS active,
         ARRAY[sum(st.st_buckets[1]),
         sum(st.st_buckets[2]),
         sum(st.st_buckets[3]),
         sum(st.st_buckets[4]),
         sum(st.st_buckets[5]),
         sum(st.st_buckets[6]),
         sum(st.st_buckets[7]),
         sum(st.st_buckets[8]),
         sum(st.st_buckets[9]),
         sum(st.st_buckets[10]),
         sum(st.st_buckets[11]),
         sum(st.st_buckets[12]),
         sum(st.st_buckets[13]),
         sum(st.st_buckets[14]),
         sum(st.st_buckets[15])] AS st_buckets,
         sum(st.st_sum)::float8 AS st_sum, sum(st.st_count) AS st_count
  FROM :schema.queue_stats st
  GROUP BY st.queue
) s
CROSS JOIN LATERAL (
  WITH RECURSIVE p(pr) AS (
    (SELECT j.priority FROM :schema.jobs j WHERE j.state = 'ready' AND j.queue = s.queue ORDER BY j.priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT j.priority FROM :schema.jobs j WHERE j.state = 'ready' AND j.queue = s.queue AND j.priority < p.pr
            ORDER BY j.priority DESC LIMIT 1)
    FROM p WHERE p.pr IS NOT NULL
  )
  SELECT coalesce(sum(later.delayed), 0)::bigint AS delayed, coalesce(sum(later.failed), 0)::bigint AS failed,
         extract(epoch FROM now() - min(first.run_at) FILTER (WHERE first.run_at <= now()))::float8 AS oldest_age
  FROM p
  CROSS JOIN LATERAL (
    SELECT j.run_at FROM :schema.jobs j WHERE j.state = 'ready' AND j.queue = s.queue AND j.priority = p.pr
    ORDER BY j.run_at, j.id LIMIT 1
  ) first
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE j.attempts = 0) AS delayed, count(*) FILTER (WHERE j.attempts > 0) AS failed
    FROM :schema.jobs j WHERE j.state = 'ready' AND j.queue = s.queue AND j.priority = p.pr AND j.run_at > now()
  ) later
  WHERE p.pr IS NOT NULL
) w;

-- One queue's figures, or every queue's given NULL, in one call. A function so that the read
-- runs with JIT compilation off wherever it is called from, a transaction-mode pooler
-- included (planned before the tables have statistics, the walk's estimate can pass
-- jit_above_cost, and compiling it took 600 ms for a read that runs in under one), with a
-- plan made once per connection rather than on every call.
CREATE FUNCTION :schema.queue_figures(only_queue text) RETURNS SETOF :schema.queue_figures_view
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
  IF only_queue IS NULL THEN
    RETURN QUERY SELECT * FROM :schema.queue_figures_view ORDER BY queue;
  ELSE
    RETURN QUERY SELECT * FROM :schema.queue_figures_view WHERE queue = only_queue;
  END IF;
END
$fn$;
