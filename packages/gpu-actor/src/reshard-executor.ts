/**
 * Runs one device's part of a re-shard plan: turns the weights it holds under the old layout
 * into its shard of the new one, unit by unit (see weight-units.ts). Before its first unit it
 * posts its peers the pieces they can read in place (reshard-sends.ts: as many as may go early);
 * then at unit u it
 *   1. posts every send of units <= u not posted yet, and what may go early (strided pieces are
 *      cut into scratch a few units ahead),
 *   2. assembles the new unit u from `keep` pieces (copied from its old slices), `peer` pieces
 *      (awaited) and `host` pieces (copied from the host weight cache, else read from the
 *      checkpoint), through the same assembly path as loading (ModelWeightsBuilder): each piece
 *      is copied straight into its rows of the new (fused) matrix,
 *      (A unit the device holds whole under both layouts, an embedding, is kept in place:
 *      unitsKeptInPlace, no copy and no second copy at the peak.)
 *   3. hands its old unit u to PendingUnitFrees: freed (with a WeightArena: its memory given
 *      back, where the next units of the new shard are placed) once no peer reads it any more.
 * So no device waits for its peers unit by unit: each builds its units as fast as its pieces
 * are there (on GPUs, each device's copies run on its own memory at once). Only memory ties
 * them: before unit u a device frees settled old units, and awaits the oldest one's receipts
 * while its old and new bytes would pass the plan's peak, which is therefore the peak it holds.
 *
 * No wait closes a cycle: a device waiting at unit u has posted every piece of units <= u, and
 * the receipts it awaits are for pieces of units < u (the planner takes a piece of unit u only
 * from an old slice of unit >= u, and a peer answers a piece once it has built that unit).
 */
import {
  type Checkpoint,
  type DeviceReshardPlan,
  type ModelConfig,
  type ShardPosition,
  type ShardSpec,
  shardSpec,
  shardUnitSlices,
  type TensorSlice,
  unitsKeptInPlace,
} from '@seesaw/model';
import { HeldWeights } from './held-weights.ts';
import type { HostWeightCache } from './host-weight-cache.ts';
import { type LayerWeights, type ModelWeights, ModelWeightsBuilder } from './model-weights.ts';
import { PendingUnitFrees } from './pending-unit-frees.ts';
import { encodeStoredBlockMatrices } from './quantized-matrices.ts';
import { type Counters, formatSlice, pieceSource } from './reshard-piece-source.ts';
import { ReshardSends } from './reshard-sends.ts';
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
  let peakWeightBytes = old.held.numBytes;
  const pendingFrees = new PendingUnitFrees((unit) => {
    old.held.dropUnit(unit);
    releaseUnit(old.weights, numLayers, unit, arena);
  });
  // The embedding or final norm held the same under both layouts stays where it is (no copy, no
  // second copy at the peak); a peer may still read pieces out of it, which is harmless, as it
  // is never freed or overwritten.
  const keptInPlace = unitsKeptInPlace(
    allUnits(numLayers).length,
    old.held.list(),
    shardUnitSlices(config, spec),
    plan.pieces,
  );
  const newUnitBytes = new Map<number, number>();
  for (const piece of plan.pieces)
    newUnitBytes.set(piece.unit, (newUnitBytes.get(piece.unit) ?? 0) + piece.bytes);

  const sends = new ReshardSends(plan.sends, old.held, io, pendingFrees, arena);
  let mark = performance.now();
  sends.postFor(-1);
  phaseMs.sendMs += performance.now() - mark;

  for (const unit of allUnits(numLayers)) {
    // One macrotask per unit: heartbeats and peers' pieces are taken in even when no piece of
    // this device has to be awaited (a host-route switch would otherwise never yield).
    await new Promise((resolve) => setImmediate(resolve));
    mark = performance.now();
    const lap = (phase: keyof ReshardPhaseMs) => {
      const now = performance.now();
      phaseMs[phase] += now - mark;
      mark = now;
    };
    sends.postFor(unit);
    lap('sendMs');
    // Old units peers still read are freed once they are done, or now when this unit's new
    // bytes would take the device past the plan's peak (so the peak is the plan's, as checked).
    pendingFrees.freeSettled();
    const unitBytes = newUnitBytes.get(unit) ?? 0;
    const addedBytes = keptInPlace.has(unit) ? 0 : unitBytes;
    while (old.held.numBytes + held.numBytes + addedBytes > plan.peakWeightBytes) {
      if (!(await pendingFrees.freeOldest())) break;
    }
    lap('waitMs');
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
    if (keptInPlace.has(unit)) {
      old.held.moveUnit(unit, held);
      builder.adoptUnit(old.weights, unit);
      counters.bytesKept += unitBytes;
    } else if (targetUnits.has(unit)) {
      builder.addUnit(pieceSource(pieces, received, old.held, io.checkpoint, counters, io.hostWeights), unit);
    }
    for (const piece of peerPieces) io.confirm?.((piece.source as { device: number }).device, piece.slice);
    lap('assembleMs');
    peakWeightBytes = Math.max(peakWeightBytes, old.held.numBytes + held.numBytes);
    pendingFrees.release(unit);
    lap('otherMs');
  }
  // No peer reads this device's memory once the switch is over.
  mark = performance.now();
  await pendingFrees.freeAll();
  await Promise.all(sends.scratchReceipts);
  phaseMs.waitMs += performance.now() - mark;
  const weights = encodeStoredBlockMatrices(builder.build(), io.checkpoint);
  const accounted = phaseMs.sendMs + phaseMs.waitMs + phaseMs.assembleMs + phaseMs.otherMs;
  phaseMs.otherMs += performance.now() - startMs - accounted;
  const arenaFallbacks = (arena?.stats.fallbackAllocations ?? 0) - fallbacksBefore;
  return { weights, held, ...counters, bytesSent: sends.bytesSent, peakWeightBytes, phaseMs, arenaFallbacks };
}
