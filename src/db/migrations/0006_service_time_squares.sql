-- The sum of the squared service times beside their sum and count, so that a reader can tell
-- how variable the jobs are (the squared coefficient of variation, E[x^2] / E[x]^2 - 1) over
-- any span two reads bracket, as it tells their mean from the sum and count. Rows from before
-- this migration start at zero: readers use differences between reads, never the lifetime sum.
-- queue_figures_view keeps its columns (the stats read adds this one): a view or function whose
-- result changes breaks the statements that running processes of the older version prepared
-- on it ("cached plan must not change result type").
ALTER TABLE :schema.queue_stats ADD COLUMN st_sum_sq double precision NOT NULL DEFAULT 0;
