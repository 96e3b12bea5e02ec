// WGSL compute kernels. Every output element is produced by one thread (or one fixed-shape
// workgroup reduction) that reads its inputs in a fixed order, so an output's bits do not
// depend on how many rows share the dispatch: the GPU path is batch-invariant within its own
// bits. All arithmetic accumulates in f32.

/**
 * Weight element reader for one storage dtype. f16/bf16 weights stay 16-bit on the device
 * (packed two per u32 word) and are widened in registers: bf16 by a 16-bit shift into the f32
 * high half, f16 by unpack2x16float (core WGSL, so no `shader-f16` feature is needed).
 */
export function weightReader(dtype: 'f32' | 'f16' | 'bf16'): string {
  if (dtype === 'f32') {
    return `@group(0) @binding(1) var<storage, read> w: array<f32>;
fn weightAt(i: u32) -> f32 { return w[i]; }`;
  }
  const word = `let word = w[i >> 1u]; let half = (word >> ((i & 1u) * 16u)) & 0xffffu;`;
  const widen = dtype === 'bf16' ? 'bitcast<f32>(half << 16u)' : 'unpack2x16float(half).x';
  return `@group(0) @binding(1) var<storage, read> w: array<u32>;
fn weightAt(i: u32) -> f32 { ${word} return ${widen}; }`;
}

/** The bindings every matmul kernel takes (gemvSource in wgsl-gemv.ts too): x, the weight (read
 *  through weightAt), out, the shape and leaf count, and the bias when there is one. */
export function matmulBindings(dtype: 'f32' | 'f16' | 'bf16', withBias: boolean): string {
  return `struct Params { m: u32, n: u32, k: u32, leaves: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
${weightReader(dtype)}
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${withBias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}`;
}

/**
 * out[r][j] = sum_k x[r][k] * w[j][k] (+ bias[j]); one thread per output. K is reduced as
 * p.leaves (1, 2, 4 or 8) equal leaves, each a fused multiply-add chain in increasing k from 0,
 * combined by the halving tree (adjacent pairs, level by level), the bias added last. A
 * row-parallel weight has 8 leaves on one device and 8 / T on each of T ranks, so the host-side
 * all-reduce (the same tree over ranks) reproduces the single device's bits.
 */
export function matmulSource(dtype: 'f32' | 'f16' | 'bf16', withBias: boolean): string {
  return `${matmulBindings(dtype, withBias)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let r = gid.y;
  if (j >= p.n || r >= p.m) { return; }
  let xBase = r * p.k;
  let wBase = j * p.k;
  let leafLen = p.k / p.leaves;
  var part: array<f32, 8>;
  for (var l = 0u; l < p.leaves; l++) {
    var sum = 0.0;
    for (var i = l * leafLen; i < (l + 1u) * leafLen; i++) { sum = fma(x[xBase + i], weightAt(wBase + i), sum); }
    part[l] = sum;
  }
  for (var width = p.leaves / 2u; width > 0u; width /= 2u) {
    for (var i = 0u; i < width; i++) { part[i] = part[2u * i] + part[2u * i + 1u]; }
  }
  out[r * p.n + j] = ${withBias ? 'part[0] + bias[j]' : 'part[0]'};
}`;
}

/** Rows and columns of matmulTiledSource's output tile (and the K step of its shared-memory tiles). */
export const MATMUL_TILE = 16;

/**
 * matmulSource's product for many rows (prefill): one 16 x 16 workgroup per 16 x 16 output tile,
 * stepping K by 16 through x and weight tiles in workgroup memory, so each x row and weight row
 * is read from storage once per tile instead of once per output. Every thread still owns one
 * output and makes matmulSource's exact chain: the same fma in increasing k, a new leaf sum at
 * each leaf boundary (whichever K tile it falls in), the same halving tree and bias, so the two
 * kernels give the same bits and the choice between them cannot change an output.
 */
export function matmulTiledSource(dtype: 'f32' | 'f16' | 'bf16', withBias: boolean): string {
  return `${matmulBindings(dtype, withBias)}
const TILE = ${MATMUL_TILE}u;
var<workgroup> xs: array<array<f32, ${MATMUL_TILE}>, ${MATMUL_TILE}>;
var<workgroup> ws: array<array<f32, ${MATMUL_TILE}>, ${MATMUL_TILE}>;
@compute @workgroup_size(${MATMUL_TILE}, ${MATMUL_TILE})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let j = wg.x * TILE + lid.x;
  let r = wg.y * TILE + lid.y;
  // This thread loads x row r and weight row loadRow of each K tile, at column lid.x.
  let loadRow = wg.x * TILE + lid.y;
  let leafLen = p.k / p.leaves;
  let kUsed = leafLen * p.leaves;
  var part: array<f32, 8>;
  var leaf = 0u;
  var sum = 0.0;
  for (var t0 = 0u; t0 < kUsed; t0 += TILE) {
    let i = t0 + lid.x;
    var xv = 0.0;
    var wv = 0.0;
    if (r < p.m && i < kUsed) { xv = x[r * p.k + i]; }
    if (loadRow < p.n && i < kUsed) { wv = weightAt(loadRow * p.k + i); }
    xs[lid.y][lid.x] = xv;
    ws[lid.y][lid.x] = wv;
    workgroupBarrier();
    let end = min(TILE, kUsed - t0);
    for (var c = 0u; c < end; c++) {
      if (t0 + c == (leaf + 1u) * leafLen) { part[leaf] = sum; leaf++; sum = 0.0; }
      sum = fma(xs[lid.y][c], ws[lid.x][c], sum);
    }
    workgroupBarrier();
  }
  part[leaf] = sum;
  for (var width = p.leaves / 2u; width > 0u; width /= 2u) {
    for (var i = 0u; i < width; i++) { part[i] = part[2u * i] + part[2u * i + 1u]; }
  }
  if (j < p.n && r < p.m) { out[r * p.n + j] = ${withBias ? 'part[0] + bias[j]' : 'part[0]'}; }
}`;
}

/**
 * RMSNorm, one 64-thread workgroup per row: each thread sums squares of a fixed stride of
 * columns, then a fixed tree reduction; the shape is the same for every batch size.
 */
export const rmsNormSource = `struct Params { rows: u32, cols: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> partial: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let r = wg.x;
  let base = r * p.cols;
  var sumSq = 0.0;
  for (var i = lane; i < p.cols; i += 64u) { let v = x[base + i]; sumSq = fma(v, v, sumSq); }
  partial[lane] = sumSq;
  workgroupBarrier();
  for (var width = 32u; width > 0u; width >>= 1u) {
    if (lane < width) { partial[lane] += partial[lane + width]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(partial[0] / f32(p.cols) + p.eps);
  for (var i = lane; i < p.cols; i += 64u) { out[base + i] = x[base + i] * inv * weight[i]; }
}`;

/** x += y, elementwise. */
export const addInPlaceSource = `struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * 65535u * 64u + gid.x;
  if (i < p.n) { x[i] = x[i] + y[i]; }
}`;

/** gateUp [rows][2I] -> out [rows][I] = silu(gate) * up. */
export const siluMulSource = `struct Params { rows: u32, inter: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> gateUp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let r = gid.y;
  if (j >= p.inter || r >= p.rows) { return; }
  let g = gateUp[r * 2u * p.inter + j];
  let u = gateUp[r * 2u * p.inter + p.inter + j];
  out[r * p.inter + j] = g / (1.0 + exp(-g)) * u;
}`;

/** Embedding gather: out[t] = table[ids[t]] (table in its storage dtype). */
export function embedSource(dtype: 'f32' | 'f16' | 'bf16'): string {
  return `struct Params { tokens: u32, hidden: u32, vocab: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> ids: array<i32>;
${weightReader(dtype)}
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let t = gid.y;
  if (c >= p.hidden || t >= p.tokens) { return; }
  let id = u32(ids[t]);
  out[t * p.hidden + c] = weightAt(id * p.hidden + c);
}`;
}

/**
 * Rotate-half RoPE in place on rows of stride rowStride starting at element offset; cos/sin [tokens][headDim/2] come from
 * the host's table (which already has Llama-3 frequency scaling applied).
 */
export const ropeSource = `struct Params { tokens: u32, heads: u32, headDim: u32, rowStride: u32, offset: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cosT: array<f32>;
@group(0) @binding(2) var<storage, read> sinT: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let half = p.headDim / 2u;
  let i = gid.x % half;
  let h = gid.x / half;
  let t = gid.y;
  if (h >= p.heads || t >= p.tokens) { return; }
  let base = p.offset + t * p.rowStride + h * p.headDim;
  let a = x[base + i];
  let b = x[base + i + half];
  let c = cosT[t * half + i];
  let s = sinT[t * half + i];
  x[base + i] = a * c - b * s;
  x[base + i + half] = b * c + a * s;
}`;

/**
 * Greedy sampling: the index of each row's largest logit, the lowest index on ties (as the CPU
 * engine's argmax). One 64-lane workgroup per row: each lane scans a fixed stride of columns,
 * then a fixed tree reduction, so the answer does not depend on the batch.
 */
export const argmaxRowsSource = `struct Params { rows: u32, n: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> ids: array<i32>;
@group(0) @binding(2) var<uniform> p: Params;
var<workgroup> bestValue: array<f32, 64>;
var<workgroup> bestIndex: array<u32, 64>;
fn better(value: f32, index: u32, thanValue: f32, thanIndex: u32) -> bool {
  return value > thanValue || (value == thanValue && index < thanIndex);
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let base = wg.x * p.n;
  var value = -3.4e38;
  var index = 0xffffffffu;
  for (var i = lane; i < p.n; i += 64u) {
    let v = logits[base + i];
    if (better(v, i, value, index)) { value = v; index = i; }
  }
  bestValue[lane] = value;
  bestIndex[lane] = index;
  workgroupBarrier();
  for (var width = 32u; width > 0u; width >>= 1u) {
    if (lane < width && better(bestValue[lane + width], bestIndex[lane + width], bestValue[lane], bestIndex[lane])) {
      bestValue[lane] = bestValue[lane + width];
      bestIndex[lane] = bestIndex[lane + width];
    }
    workgroupBarrier();
  }
  if (lane == 0u) { ids[wg.x] = i32(bestIndex[0]); }
}`;

/**
 * The k best of each logits row in the CPU sampler's order (larger first, lower index on ties;
 * NaN ranks as -inf), one workgroup a row, k selection passes: pass j takes the best entry that
 * comes after pass j-1's in that order. out row r: k values, then k indices (as f32 bit
 * patterns), so one read brings both back.
 */
export const topKRowsSource = `struct Params { rows: u32, n: u32, k: u32, negInfBits: u32 }
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> best: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
const NONE = 0xffffffffu;
var<workgroup> bestValue: array<f32, 64>;
var<workgroup> bestIndex: array<u32, 64>;
// -inf comes from the host: a constant expression may not evaluate to an infinity. NaN is found
// by its bits: drivers may compile \`v != v\` as false (lavapipe does), and a NaN kept as a lane's
// candidate then hides every better entry that meets it in the reduction.
fn ranked(v: f32) -> f32 {
  if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>(p.negInfBits); }
  return v;
}
fn before(value: f32, index: u32, thanValue: f32, thanIndex: u32) -> bool {
  return value > thanValue || (value == thanValue && index < thanIndex);
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let base = wg.x * p.n;
  var lastValue = 0.0;
  var lastIndex = NONE;
  for (var j = 0u; j < p.k; j++) {
    var value = 0.0;
    var index = NONE;
    for (var i = lane; i < p.n; i += 64u) {
      let v = ranked(logits[base + i]);
      let isAfterLast = lastIndex == NONE || before(lastValue, lastIndex, v, i);
      if (isAfterLast && (index == NONE || before(v, i, value, index))) { value = v; index = i; }
    }
    bestValue[lane] = value;
    bestIndex[lane] = index;
    workgroupBarrier();
    for (var width = 32u; width > 0u; width >>= 1u) {
      if (lane < width) {
        let otherIndex = bestIndex[lane + width];
        let otherValue = bestValue[lane + width];
        if (otherIndex != NONE && (bestIndex[lane] == NONE || before(otherValue, otherIndex, bestValue[lane], bestIndex[lane]))) {
          bestValue[lane] = otherValue;
          bestIndex[lane] = otherIndex;
        }
      }
      workgroupBarrier();
    }
    lastValue = bestValue[0];
    lastIndex = bestIndex[0];
    if (lane == 0u) {
      best[wg.x * 2u * p.k + j] = lastValue;
      best[wg.x * 2u * p.k + p.k + j] = bitcast<f32>(lastIndex);
    }
    workgroupBarrier();
  }
}`;

/**
 * The sampling weight left outside each row's selected head: after topKRows wrote the k best
 * (values, indices) of row r into best[r * 2k ..], this adds exp((z - top) / T) (NaN and -inf
 * weigh 0) over every entry that comes after the k-th in the sampler's order, in f32, and writes
 * it to best[rows * 2k + r]. The host bounds the CPU's float64 sum with it (certified-draw.ts).
 */
export const tailWeightsSource = `struct Params { rows: u32, n: u32, k: u32, unused: u32 }
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> invTemperatures: array<f32>;
@group(0) @binding(2) var<storage, read_write> best: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> partial: array<f32, 64>;
fn isNanOrNegInf(v: f32) -> bool {
  let bits = bitcast<u32>(v);
  return (bits & 0x7fffffffu) > 0x7f800000u || bits == 0xff800000u;
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let base = wg.x * p.n;
  let head = wg.x * 2u * p.k;
  let top = best[head];
  let lastValue = best[head + p.k - 1u];
  let lastIndex = bitcast<u32>(best[head + 2u * p.k - 1u]);
  let invT = invTemperatures[wg.x];
  var sum = 0.0;
  for (var i = lane; i < p.n; i += 64u) {
    let v = logits[base + i];
    if (isNanOrNegInf(v)) { continue; }
    let isAfterLast = v < lastValue || (v == lastValue && i > lastIndex);
    if (isAfterLast) { sum += exp((v - top) * invT); }
  }
  partial[lane] = sum;
  workgroupBarrier();
  for (var width = 32u; width > 0u; width >>= 1u) {
    if (lane < width) { partial[lane] += partial[lane + width]; }
    workgroupBarrier();
  }
  if (lane == 0u) { best[p.rows * 2u * p.k + wg.x] = partial[0]; }
}`;
