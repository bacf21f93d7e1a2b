-- Counters sharded per queue: each statement adds its increments to one of a few rows of its
-- queue (chosen at random per statement), so concurrent workers completing jobs do not queue
-- up behind one hot row lock held until commit. Readers sum the shards.
ALTER TABLE :schema.queue_stats ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE :schema.queue_stats DROP CONSTRAINT queue_stats_pkey;
ALTER TABLE :schema.queue_stats ADD PRIMARY KEY (queue, shard);
