/**
 * Runs one device's part of a re-shard plan: turns the weights it holds under the old layout
 * into its shard of the new one, unit by unit (see weight-units.ts). At unit u it
 *   1. posts its sends of unit u to peers (raw piece bytes, cut from what it holds),
 *   2. assembles the new unit u from `keep` pieces (copied from its old slices), `peer` pieces
 *      (awaited) and `host` pieces (copied from the host weight cache, else read from the
 *      checkpoint), through the same assembly path as loading (ModelWeightsBuilder): each piece
 *      is copied straight into its rows of the new (fused) matrix,
 *   3. frees its old unit u (with a WeightArena: gives its memory back, where the next units of
 *      the new shard are placed, so a switch writes into pages the device touched already).
 * Every device posts unit u's sends before it waits for unit u's pieces, so no two devices wait
 * on each other. The planner takes a piece of unit u only from an old slice of unit >= u, which
 * is still held at step 3 of unit u.
 *
 * A peer on this host reads a piece in place, out of the sender's shared weight memory, and
 * answers once it has copied it (io.confirm): before step 3 a device waits for the receipts of
 * the pieces it has sent so far, so no freed range is overwritten while a peer still reads it. A
 * peer sends those receipts right after its own step 2 of the same unit, so the wait cannot close
 * a cycle. A strided piece is cut into arena scratch first, given back when its receipt comes.
 */
import {
  type Checkpoint,
  type DeviceReshardPlan,
  type ModelConfig,
  type ShardPosition,
  type ShardSpec,
  shardSpec,
  type TensorSlice,
} from '@seesaw/model';
import { HeldWeights } from './held-weights.ts';
import type { HostWeightCache } from './host-weight-cache.ts';
import { type LayerWeights, type ModelWeights, ModelWeightsBuilder } from './model-weights.ts';
import { encodeStoredBlockMatrices } from './quantized-matrices.ts';
import { type Counters, formatSlice, pieceSource } from './reshard-piece-source.ts';
import type { WeightArena } from './weight-arena.ts';
import {
  allUnits,
  embeddingUnit,
  finalNormUnit,
  lmHeadUnit,
  shardUnits,
  unitSlices,
} from './weight-units.ts';

/** How a device moves pieces: its peer links and the host's checkpoint. */
export interface ReshardIo {
  /**
   * Posts raw piece bytes (row-major [rows][cols] of the piece) to local device `to`. Returns
   * nothing when the bytes were encoded into the link's frame (the caller may reuse them at
   * once), or the promise of the peer's receipt when it reads them in place (shared memory: the
   * caller keeps them unchanged until it resolves).
   */
  send(to: number, slice: TensorSlice, bytes: Uint8Array): Promise<void> | undefined;
  /** The raw bytes of `slice` from local device `from`, once they have come. */
  receive(from: number, slice: TensorSlice): Promise<Uint8Array>;
  /** Tells device `from` that its piece `slice` is copied and no longer read (its receipt). */
  confirm?(from: number, slice: TensorSlice): void;
  /** Tensor dtypes and shapes, and the data of `host` pieces when there is no host weight cache. */
  checkpoint: Checkpoint;
  /** This device's target shard in host memory: `host` pieces are copied from here (filled already). */
  hostWeights?: HostWeightCache;
  /** The device's weight memory: the new shard is built in it, the old one freed into it. */
  weightArena?: WeightArena;
}

/** Where a switch's time went on this device, ms (they add up to about the executor's time). */
export interface ReshardPhaseMs {
  /** Cutting and posting sends. */
  sendMs: number;
  /** Awaiting peers' pieces. */
  waitMs: number;
  /** Copying pieces into the new matrices (keep, peer and host pieces alike). */
  assembleMs: number;
  /** Freeing old units, re-encoding quantized blocks, yielding between units. */
  otherMs: number;
}

export interface ReshardOutcome {
  weights: ModelWeights;
  held: HeldWeights;
  bytesKept: number;
  bytesReceived: number;
  bytesSent: number;
  bytesFromHost: number;
  /** Raw bytes of old plus new slices held at the worst moment (the plan models the same). */
  peakWeightBytes: number;
  phaseMs: ReshardPhaseMs;
  /** Weight-arena requests that did not fit (served by fresh memory) during this switch. */
  arenaFallbacks: number;
}

function samePosition(a: ShardPosition, b: ShardPosition): boolean {
  return a.tp === b.tp && a.tpRank === b.tpRank && a.pp === b.pp && a.ppStage === b.ppStage;
}

/**
 * Drops the old weights' references to `unit`, so its memory can go before the next unit is
 * built: back to `arena` when the weights were built in it, else to the garbage collector.
 */
function releaseUnit(weights: ModelWeights, numLayers: number, unit: number, arena?: WeightArena): void {
  const blocks = weights.unitBlocks?.get(unit);
  if (blocks && arena) {
    for (const block of blocks) arena.free(block);
    weights.unitBlocks!.delete(unit);
  }
  if (unit === embeddingUnit()) weights.embedding = undefined;
  else if (unit === finalNormUnit(numLayers)) weights.finalNorm = undefined;
  else if (unit === lmHeadUnit(numLayers)) weights.lmHead = undefined;
  else {
    const index = unit - 1 - weights.shard.layers.start;
    const layers = weights.layers as Array<LayerWeights | undefined>;
    if (index >= 0 && index < layers.length) layers[index] = undefined;
  }
}

/**
 * Executes `plan` on a device holding `old` (weights and their raw slices, which are consumed:
 * freed unit by unit). Resolves with the new shard's weights and slices and the bytes moved.
 */
export async function executeReshard(
  config: ModelConfig,
  plan: DeviceReshardPlan,
  old: { weights: ModelWeights; held: HeldWeights },
  io: ReshardIo,
): Promise<ReshardOutcome> {
  if (!samePosition(plan.from, old.weights.shard)) {
    const { tp, tpRank, pp, ppStage } = old.weights.shard;
    throw new Error(
      `plan of device ${plan.device} starts from ${JSON.stringify(plan.from)}, but this device holds ` +
        `${JSON.stringify({ tp, tpRank, pp, ppStage })}`,
    );
  }
  const numLayers = config.numLayers;
  const spec: ShardSpec = shardSpec(config, plan.to);
  const startMs = performance.now();
  const arena = io.weightArena;
  const fallbacksBefore = arena?.stats.fallbackAllocations ?? 0;
  const held = new HeldWeights();
  const builder = new ModelWeightsBuilder(spec, numLayers, held, arena);
  const targetUnits = new Set(shardUnits(spec, numLayers));
  const counters: Counters = { bytesKept: 0, bytesReceived: 0, bytesFromHost: 0 };
  const phaseMs: ReshardPhaseMs = { sendMs: 0, waitMs: 0, assembleMs: 0, otherMs: 0 };
  let bytesSent = 0;
  let peakWeightBytes = old.held.numBytes;
  /** Receipts of pieces peers read in place out of the old slices, not yet awaited. */
  let heldReceipts: Array<Promise<void>> = [];
  /** Receipts of pieces read in place out of arena scratch (each gives its scratch back). */
  const scratchReceipts: Array<Promise<void>> = [];

  for (const unit of allUnits(numLayers)) {
    // One macrotask per unit: heartbeats and peers' pieces are taken in even when no piece of
    // this device has to be awaited (a host-route switch would otherwise never yield).
    await new Promise((resolve) => setImmediate(resolve));
    let mark = performance.now();
    const lap = (phase: keyof ReshardPhaseMs) => {
      const now = performance.now();
      phaseMs[phase] += now - mark;
      mark = now;
    };
    for (const send of plan.sends) {
      if (send.unit !== unit) continue;
      // A strided piece is cut into arena scratch (touched memory), given back once the frame
      // holds it or, when the peer reads it in place, once the peer has taken it.
      let scratch: Uint8Array | undefined;
      const bytes = old.held.extract(send.slice, (numBytes) => {
        scratch = arena ? arena.alloc(numBytes) : new Uint8Array(numBytes);
        return scratch;
      });
      const receipt = io.send(send.to, send.slice, bytes);
      const block = scratch;
      if (!receipt) {
        if (block && arena) arena.free(block);
      } else if (block) {
        const freed = receipt.then(() => arena?.free(block));
        freed.catch(() => {}); // awaited at the end; a switch that fails before then drops it
        scratchReceipts.push(freed);
      } else {
        heldReceipts.push(receipt);
      }
      bytesSent += bytes.byteLength;
    }
    lap('sendMs');
    const pieces = plan.pieces.filter((piece) => piece.unit === unit);
    const targetNames = new Set(unitSlices(spec, numLayers, unit).map((slice) => slice.name));
    const stray = pieces.find((piece) => !targetNames.has(piece.slice.name));
    if (stray) {
      throw new RangeError(
        `piece ${formatSlice(stray.slice)} of unit ${unit} is no part of this device's target shard`,
      );
    }
    const peerPieces = pieces.filter((piece) => piece.source.kind === 'peer');
    const arrived = await Promise.all(
      peerPieces.map((piece) => io.receive((piece.source as { device: number }).device, piece.slice)),
    );
    const received = new Map(peerPieces.map((piece, i) => [piece, arrived[i]!]));
    lap('waitMs');
    if (targetUnits.has(unit)) {
      builder.addUnit(pieceSource(pieces, received, old.held, io.checkpoint, counters, io.hostWeights), unit);
    }
    for (const piece of peerPieces) io.confirm?.((piece.source as { device: number }).device, piece.slice);
    lap('assembleMs');
    if (heldReceipts.length > 0) {
      await Promise.all(heldReceipts);
      heldReceipts = [];
      lap('waitMs');
    }
    peakWeightBytes = Math.max(peakWeightBytes, old.held.numBytes + held.numBytes);
    old.held.dropUnit(unit);
    releaseUnit(old.weights, numLayers, unit, arena);
    lap('otherMs');
  }
  // No peer reads this device's memory once the switch is over.
  const mark = performance.now();
  await Promise.all(scratchReceipts);
  phaseMs.waitMs += performance.now() - mark;
  const weights = encodeStoredBlockMatrices(builder.build(), io.checkpoint);
  const accounted = phaseMs.sendMs + phaseMs.waitMs + phaseMs.assembleMs + phaseMs.otherMs;
  phaseMs.otherMs += performance.now() - startMs - accounted;
  const arenaFallbacks = (arena?.stats.fallbackAllocations ?? 0) - fallbacksBefore;
  return { weights, held, ...counters, bytesSent, peakWeightBytes, phaseMs, arenaFallbacks };
}
