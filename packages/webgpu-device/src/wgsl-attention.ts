// WGSL for the paged KV cache: K/V writes into [numBlocks][numKvHeads][blockSize][headDim]
// blocks through slots, and causal attention over block tables for prefill chunks and decode
// tokens alike. One thread per (token, query head) walks the key positions 0..its position in
// order with an online softmax, so its output does not depend on the batch around it.

/** Shared parameter block of both kernels. */
const params = `struct Params {
  tokens: u32, numHeads: u32, numKvHeads: u32, headDim: u32,
  blockSize: u32, maxBlocksPerSeq: u32, rowStride: u32, scale: f32,
  kOffset: u32, vOffset: u32, pad0: u32, pad1: u32,
}`;

const cacheOffset = `fn cacheOffset(slot: u32, head: u32) -> u32 {
  let block = slot / p.blockSize;
  return ((block * p.numKvHeads + head) * p.blockSize + slot % p.blockSize) * p.headDim;
}`;

/** kCache/vCache[slot of token t][kv head] = the k/v parts (at kOffset/vOffset) of qkv rows. */
export const writeKvSource = `${params}
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> slots: array<i32>;
@group(0) @binding(2) var<storage, read_write> kCache: array<f32>;
@group(0) @binding(3) var<storage, read_write> vCache: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${cacheOffset}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.y;
  let e = gid.x % p.headDim;
  let h = gid.x / p.headDim;
  if (t >= p.tokens || h >= p.numKvHeads) { return; }
  let src = t * p.rowStride + h * p.headDim + e;
  let dst = cacheOffset(u32(slots[t]), h) + e;
  kCache[dst] = qkv[p.kOffset + src];
  vCache[dst] = qkv[p.vOffset + src];
}`;

/** Head dims up to this many floats (Llama-family models use 64 or 128). */
export const MAX_HEAD_DIM = 256;

/**
 * out[t][h] = softmax(scale q·K) V over positions 0..position(t) of t's sequence.
 * tokenInfo[t] = (sequence index, position); block tables [numSeqs][maxBlocksPerSeq].
 */
export const pagedAttentionSource = `${params}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kCache: array<f32>;
@group(0) @binding(2) var<storage, read> vCache: array<f32>;
@group(0) @binding(3) var<storage, read> tokenInfo: array<vec2<i32>>;
@group(0) @binding(4) var<storage, read> blockTables: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${cacheOffset}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let h = gid.x;
  let t = gid.y;
  if (h >= p.numHeads || t >= p.tokens) { return; }
  let g = h / (p.numHeads / p.numKvHeads);
  let seq = u32(tokenInfo[t].x);
  let position = u32(tokenInfo[t].y);
  let qBase = t * p.rowStride + h * p.headDim;
  var acc: array<f32, ${MAX_HEAD_DIM}>;
  for (var e = 0u; e < p.headDim; e++) { acc[e] = 0.0; }
  var runningMax = -3.4e38;
  var denominator = 0.0;
  for (var pos = 0u; pos <= position; pos++) {
    let block = u32(blockTables[seq * p.maxBlocksPerSeq + pos / p.blockSize]);
    let off = cacheOffset(block * p.blockSize + pos % p.blockSize, g);
    var dot = 0.0;
    for (var e = 0u; e < p.headDim; e++) { dot = fma(q[qBase + e], kCache[off + e], dot); }
    let score = dot * p.scale;
    let newMax = max(runningMax, score);
    let correction = exp(runningMax - newMax);
    let weight = exp(score - newMax);
    denominator = denominator * correction + weight;
    for (var e = 0u; e < p.headDim; e++) { acc[e] = fma(acc[e], correction, weight * vCache[off + e]); }
    runningMax = newMax;
  }
  let outBase = t * p.numHeads * p.headDim + h * p.headDim;
  for (var e = 0u; e < p.headDim; e++) { out[outBase + e] = acc[e] / denominator; }
}`;
