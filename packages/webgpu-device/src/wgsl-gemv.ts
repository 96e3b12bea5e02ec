// The decode GEMV kernel: matmulSource's bits for a few rows, each weight read once for all of them.
import { matmulBindings } from './wgsl-sources.ts';

/** Threads of a gemvSource workgroup: one per (output, leaf), so 64 / leaves outputs per group. */
export const GEMV_WORKGROUP = 64;
/** Weight columns of each leaf a gemvSource workgroup stages per step. */
const GEMV_CHUNK = 32;
/** Row stride of the staged weight tile: one more than GEMV_CHUNK, so the 64 threads reading
 *  column c of their own segment hit different memory banks. */
const GEMV_STRIDE = GEMV_CHUNK + 1;

/**
 * matmulSource's product for a few rows (decode): one thread per (output j, leaf l) keeps `rows`
 * accumulators, one per batch row, so each weight element is read once per workgroup for all the
 * rows it serves (a workgroup: 64 / p.leaves outputs, `rows` rows). Per step the 64 threads stage
 * up to 32 columns of every (output, leaf) segment in workgroup memory, adjacent threads loading
 * adjacent weights (coalesced; 16-bit weights one u32 word of two per load where every leaf
 * starts on a word, i.e. an even leaf length), then each thread runs its fma chain over its
 * segment's columns in increasing k. The leaves are combined in workgroup memory by matmulSource's
 * halving tree and the bias added last: the same chains, tree and bias as matmulSource, so both
 * give the same bits and the choice between them cannot change an output. Rows past p.m compute
 * on a clamped row and are not written. Only dtype, bias and rows make variants (leaves and the
 * load width are uniform branches): lavapipe's JIT takes about a second per variant.
 */
export function gemvSource(dtype: 'f32' | 'f16' | 'bf16', withBias: boolean, rows: number): string {
  // This step's tile: `end` columns of each of the 64 segments. Thread t loads column t % 32 (or
  // word t % 16) of every second (or fourth) segment from t / 32 (t / 16) on, so adjacent threads
  // load adjacent weights; divisors are powers of two (shifts), and the loop's start is t's, so
  // the compiler does not unroll it (an unrolled one took lavapipe's JIT seconds per variant).
  const stageElements = `for (var seg = t / CHUNK; seg < WG; seg += WG / CHUNK) {
        let c = t % CHUNK;
        let jw = j0 + (seg >> leafShift);
        var v = 0.0;
        if (jw < p.n && c < end) { v = weightAt(jw * p.k + (seg & leafMask) * leafLen + t0 + c); }
        ws[seg * STRIDE + c] = v;
      }`;
  const widen = (half: string) =>
    dtype === 'bf16' ? `bitcast<f32>((${half}) << 16u)` : `unpack2x16float(${half}).x`;
  const stageTile =
    dtype === 'f32'
      ? stageElements
      : `if (wordAligned) {
      let wordsPerChunk = CHUNK / 2u;
      for (var seg = t / wordsPerChunk; seg < WG; seg += WG / wordsPerChunk) {
        let c = 2u * (t % wordsPerChunk);
        let jw = j0 + (seg >> leafShift);
        var word = 0u;
        if (jw < p.n && c < end) { word = w[(jw * p.k + (seg & leafMask) * leafLen + t0 + c) >> 1u]; }
        ws[seg * STRIDE + c] = ${widen('word & 0xffffu')};
        ws[seg * STRIDE + c + 1u] = ${widen('word >> 16u')};
      }
    } else {
      ${stageElements}
    }`;
  return `${matmulBindings(dtype, withBias)}
const WG = ${GEMV_WORKGROUP}u;
const ROWS = ${rows}u;
const CHUNK = ${GEMV_CHUNK}u;
const STRIDE = ${GEMV_STRIDE}u;
var<workgroup> ws: array<f32, ${GEMV_WORKGROUP * GEMV_STRIDE}>;
var<workgroup> parts: array<f32, ${GEMV_WORKGROUP * rows}>;
@compute @workgroup_size(${GEMV_WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let j0 = wg.x * (WG / p.leaves);
  let row0 = wg.y * ROWS;
  let leafLen = p.k / p.leaves;
  // p.leaves is 1, 2, 4 or 8: segment s is output s >> leafShift, leaf s & leafMask.
  let leafShift = countTrailingZeros(p.leaves);
  let leafMask = p.leaves - 1u;
  // Even leaf lengths (and chunks) put every staged segment on a word boundary.
  let wordAligned = leafLen % 2u == 0u;
  // Thread t owns segment t: output j0 + t / p.leaves, leaf t % p.leaves.
  let xLeaf = (t % p.leaves) * leafLen;
  var acc: array<f32, ROWS>;
  var xRow: array<u32, ROWS>;
  for (var r = 0u; r < ROWS; r++) { acc[r] = 0.0; xRow[r] = min(row0 + r, p.m - 1u) * p.k + xLeaf; }
  for (var t0 = 0u; t0 < leafLen; t0 += CHUNK) {
    let end = min(CHUNK, leafLen - t0);
    ${stageTile}
    workgroupBarrier();
    for (var c = 0u; c < end; c++) {
      let wv = ws[t * STRIDE + c];
      for (var r = 0u; r < ROWS; r++) { acc[r] = fma(x[xRow[r] + t0 + c], wv, acc[r]); }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < ROWS; r++) { parts[r * WG + t] = acc[r]; }
  workgroupBarrier();
  let j = j0 + t / p.leaves;
  if (t % p.leaves != 0u || j >= p.n) { return; }
  for (var r = 0u; r < ROWS && row0 + r < p.m; r++) {
    var part: array<f32, 8>;
    for (var i = 0u; i < p.leaves; i++) { part[i] = parts[r * WG + t + i]; }
    for (var width = p.leaves / 2u; width > 0u; width /= 2u) {
      for (var i = 0u; i < width; i++) { part[i] = part[2u * i] + part[2u * i + 1u]; }
    }
    out[(row0 + r) * p.n + j] = ${withBias ? 'part[0] + bias[j]' : 'part[0]'};
  }
}`;
}
