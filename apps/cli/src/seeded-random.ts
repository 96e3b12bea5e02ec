/**
 * A small seeded generator for benchmark prompts and dataset sampling: a Weyl sequence
 * (golden-ratio increment) pushed through a 32-bit avalanche mix. Deterministic across
 * platforms because it only uses 32-bit integer ops.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    // Fold the seed's high bits in, so seeds above 2^32 still differ.
    this.state = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
  }

  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** Uniform integer in [0, n); n well below 2^32, so the modulo-free scaling bias is negligible. */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** `count` distinct indices of [0, n) in random order (partial Fisher-Yates). */
  sampleIndices(n: number, count: number): number[] {
    if (count > n) throw new RangeError(`cannot sample ${count} distinct items from ${n}`);
    const pool = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < count; i++) {
      const j = i + this.nextInt(n - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, count);
  }

  tokenIds(length: number, vocabSize: number): number[] {
    return Array.from({ length }, () => this.nextInt(vocabSize));
  }
}
