/**
 * Stage-level pipelining of one replica: every stage works on one step at a time, steps pass
 * through the stages in issue order, and a stage starts a step once the step has left the
 * previous stage and the stage has finished the step before it. Issue order is FIFO, so each
 * step's schedule is fixed when it is issued.
 */
export class PipelineTimeline {
  private readonly stageFree: number[];

  constructor(numStages: number, startSeconds: number) {
    this.stageFree = Array.from({ length: numStages }, () => startSeconds);
  }

  get numStages(): number {
    return this.stageFree.length;
  }

  /** When a step issued now could start its first stage. */
  firstStageFree(): number {
    return this.stageFree[0];
  }

  /** Runs a step ready at `readySeconds` with the given per-stage durations; returns its first start and last end. */
  run(readySeconds: number, stageSeconds: readonly number[]): { start: number; end: number } {
    if (stageSeconds.length !== this.stageFree.length) throw new RangeError('one duration per stage');
    let time = readySeconds;
    let start = 0;
    for (let s = 0; s < stageSeconds.length; s++) {
      const begin = Math.max(time, this.stageFree[s]);
      if (s === 0) start = begin;
      time = begin + stageSeconds[s];
      this.stageFree[s] = time;
    }
    return { start, end: time };
  }
}
