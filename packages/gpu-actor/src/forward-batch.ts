import type { AttentionBatch } from '@seesaw/kernels';
import type { StepSeq } from '@seesaw/protocol';

/**
 * A step's sequences flattened into the arrays the kernels take. Tokens of all sequences
 * are concatenated in batch order: sequence s owns rows queryStart[s]..queryStart[s+1]-1.
 */
export interface ForwardBatch {
  numTokens: number;
  tokenIds: Int32Array;
  positions: Int32Array;
  /** KV slot (block * blockSize + offset) each token's K/V is written to. */
  slots: Int32Array;
  attention: AttentionBatch;
  /** Row (token index) whose hidden state feeds the sampler, per sampled sequence. */
  sampledRows: Int32Array;
}

/** Flattens StepSeqs, checking each block table covers the positions it is asked to hold. */
export function buildForwardBatch(seqs: StepSeq[], blockSize: number, numBlocks: number): ForwardBatch {
  const numTokens = seqs.reduce((sum, seq) => sum + seq.tokenIds.length, 0);
  const maxBlocksPerSeq = Math.max(1, ...seqs.map((seq) => seq.blockTable.length));
  const tokenIds = new Int32Array(numTokens);
  const positions = new Int32Array(numTokens);
  const slots = new Int32Array(numTokens);
  const queryStart = new Int32Array(seqs.length + 1);
  const contextLens = new Int32Array(seqs.length);
  const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq);
  const sampledRows: number[] = [];

  let row = 0;
  seqs.forEach((seq, s) => {
    const contextLen = seq.startPos + seq.tokenIds.length;
    if (seq.tokenIds.length === 0)
      throw new RangeError(`sequence ${seq.seqId}: a step needs at least one token`);
    if (seq.blockTable.length * blockSize < contextLen) {
      throw new RangeError(
        `sequence ${seq.seqId}: ${seq.blockTable.length} blocks of ${blockSize} cannot hold ${contextLen} tokens`,
      );
    }
    seq.blockTable.forEach((block, i) => {
      if (!Number.isInteger(block) || block < 0 || block >= numBlocks) {
        throw new RangeError(`sequence ${seq.seqId}: block id ${block} outside [0, ${numBlocks})`);
      }
      blockTables[s * maxBlocksPerSeq + i] = block;
    });
    queryStart[s] = row;
    contextLens[s] = contextLen;
    for (let i = 0; i < seq.tokenIds.length; i++, row++) {
      const position = seq.startPos + i;
      tokenIds[row] = seq.tokenIds[i];
      positions[row] = position;
      slots[row] = seq.blockTable[Math.floor(position / blockSize)] * blockSize + (position % blockSize);
    }
    if (seq.isSampled) sampledRows.push(row - 1);
  });
  queryStart[seqs.length] = row;

  return {
    numTokens,
    tokenIds,
    positions,
    slots,
    attention: { queryStart, contextLens, blockTables, maxBlocksPerSeq },
    sampledRows: Int32Array.from(sampledRows),
  };
}
