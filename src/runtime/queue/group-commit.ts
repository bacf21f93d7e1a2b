/**
 * Group commit: single enqueues that arrive together go to PostgreSQL as one statement, one
 * transaction and one NOTIFY, while each caller still waits for its own job's commit and gets
 * its own answer.
 *
 * The rule is the one databases use for their own log: a statement goes out at once while
 * fewer than `maxInFlight` are running (after the current turn of the event loop, so requests
 * read in the same turn go together); arrivals while all are running wait for the next one to
 * finish and then go out together. No timer: at low load a job waits for nothing, at high
 * load for at most one statement's time, and the batch grows with the load.
 *
 * A batch that fails for its data (a job PostgreSQL refuses) is sent again one job at a time,
 * in order, so the bad job fails alone; a batch that fails for the database (unreachable, shutting
 * down) fails every caller with that error.
 */
export interface GroupCommitOptions<I, R> {
  /** One statement for the batch; results in the batch's order. */
  run: (items: I[]) => Promise<R[]>;
  /** Statements running at once at most. */
  maxInFlight: number;
  /** Jobs in one statement at most. */
  maxBatch: number;
  /** True when the error belongs to the batch's data, not to the database. */
  isDataError: (err: unknown) => boolean;
}

interface Waiter<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<I, R> {
  private readonly options: GroupCommitOptions<I, R>;
  private pending: Array<Waiter<I, R>> = [];
  private inFlight = 0;
  private scheduled = false;
  private idle: Array<() => void> = [];

  constructor(options: GroupCommitOptions<I, R>) {
    this.options = options;
  }

  /** Resolves once the statement that carried `item` has committed. */
  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled && this.inFlight < this.options.maxInFlight) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Resolves when nothing is pending or running (for a clean close). */
  settled(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.pending.length > 0) {
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        if (this.pending.length > 0) this.flush();
        else if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
      });
    }
  }

  private async send(batch: Array<Waiter<I, R>>): Promise<void> {
    try {
      const results = await this.options.run(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1 || !this.options.isDataError(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      // one at a time, in the batch's order: the first of two jobs with one key is still the
      // one created, and the pool is not flooded
      for (const w of batch) {
        try {
          const [result] = await this.options.run([w.item]);
          w.resolve(result!);
        } catch (alone) {
          w.reject(alone);
        }
      }
    }
  }
}
