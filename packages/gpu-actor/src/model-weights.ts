import type { Weight } from '@seesaw/kernels';
import {
  type Checkpoint,
  dtypeByteSize,
  fullShardSpec,
  type ShardSpec,
  type TensorDType,
  type TensorSlice,
} from '@seesaw/model';
import {
  freshBytes,
  loadLayer,
  loadStackedMatrix,
  loadStackedVector,
  type SliceSink,
} from './fused-weight-reads.ts';
import type { HeldWeights } from './held-weights.ts';
import { encodeStoredBlockMatrices } from './quantized-matrices.ts';
import type { WeightArena } from './weight-arena.ts';
import { embeddingUnit, finalNormUnit, layerUnit, lmHeadUnit, shardUnits } from './weight-units.ts';

/** One decoder layer's weights, with the projections that share an input fused row-wise. */
export interface LayerWeights {
  inputNorm: Float32Array;
  /** [q rows | k rows | v rows][hidden]: one pass over the input makes q, k and v. */
  qkv: Weight;
  qkvBias: Float32Array | undefined;
  o: Weight;
  postAttentionNorm: Float32Array;
  /** [gate rows | up rows][hidden]: one pass makes both halves of SwiGLU. */
  gateUp: Weight;
  down: Weight;
}

export interface ModelWeights {
  /** What these weights are a shard of (the whole model: tp = pp = 1). */
  shard: ShardSpec;
  /** First pipeline stage only. */
  embedding: Weight | undefined;
  /** The stage's layers, shard.layers.start first. */
  layers: LayerWeights[];
  /** Last pipeline stage only. */
  finalNorm: Float32Array | undefined;
  /** Last stage only: the rank's vocabulary rows; the embedding table itself when tied and whole. */
  lmHead: Weight | undefined;
  /** Bytes held by all weights (matrices in their stored dtype, vectors as f32). */
  numBytes: number;
  /**
   * Built in a WeightArena: the arena blocks of each ordering unit (its matrices, f32 vectors
   * and raw vector slices), which a re-shard gives back to the arena unit by unit.
   */
  unitBlocks?: Map<number, Uint8Array[]>;
}

/**
 * Where weight slices come from: the checkpoint at load, or (re-sharding) pieces kept, received
 * from peers and read from the host. One assembly path serves both.
 */
export interface WeightSliceSource {
  /** Dtype and whole shape of a checkpoint tensor; throws when there is no such tensor. */
  tensor(name: string): { dtype: TensorDType; shape: number[] };
  /** Raw bytes of `slice`, row-major [rows][cols] of the slice (elements of a 1-D one), into dest (its exact size). */
  read(slice: TensorSlice, dest: Uint8Array): void;
}

/** Reads slices straight from the checkpoint's byte ranges. */
export function checkpointSliceSource(checkpoint: Checkpoint): WeightSliceSource {
  return {
    tensor: (name) => checkpoint.info(name),
    read(slice, dest) {
      const info = checkpoint.info(slice.name);
      if (info.shape.length === 1) {
        const elementBytes = dtypeByteSize(info.dtype);
        checkpoint.readBytes(info.name, dest, slice.start * elementBytes, slice.end * elementBytes);
      } else if (slice.axis === 'rows') {
        checkpoint.readRows(info.name, slice.start, slice.end, dest);
      } else {
        checkpoint.readColumns(info.name, slice.start, slice.end, dest);
      }
    },
  };
}

function weightBytes(weight: Weight | undefined): number {
  return weight?.data.byteLength ?? 0;
}

function isSameSlice(a: TensorSlice | undefined, b: TensorSlice | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.name === b.name &&
    a.axis === b.axis &&
    a.start === b.start &&
    a.end === b.end
  );
}

/**
 * Assembles a shard's ModelWeights one ordering unit at a time (see weight-units.ts), each from
 * any WeightSliceSource; with `held`, every slice read is also recorded there (raw); with
 * `arena`, every unit's memory is blocks of it (recorded per unit in ModelWeights.unitBlocks).
 */
export class ModelWeightsBuilder {
  private embedding: Weight | undefined;
  private readonly layers: Array<LayerWeights | undefined>;
  private finalNorm: Float32Array | undefined;
  private lmHead: Weight | undefined;
  private readonly added = new Set<number>();
  private readonly unitBlocks = new Map<number, Uint8Array[]>();

  constructor(
    readonly spec: ShardSpec,
    readonly numLayers: number,
    private readonly held?: HeldWeights,
    private readonly arena?: WeightArena,
  ) {
    this.layers = spec.layerSlices.map(() => undefined);
  }

  /** Reads every slice of `unit` from `source`. */
  addUnit(source: WeightSliceSource, unit: number): void {
    if (this.added.has(unit)) throw new Error(`weight unit ${unit} assembled twice`);
    this.added.add(unit);
    const held = this.held;
    const sink: SliceSink | undefined =
      held && ((slice, dtype, shape, bytes) => held.hold(slice, unit, dtype, shape, bytes));
    const { spec, arena } = this;
    let allocate = freshBytes;
    if (arena) {
      const blocks: Uint8Array[] = [];
      this.unitBlocks.set(unit, blocks);
      allocate = (numBytes) => {
        const block = arena.alloc(numBytes);
        blocks.push(block);
        return block;
      };
    }
    if (unit === embeddingUnit()) {
      if (spec.embedding) this.embedding = loadStackedMatrix(source, [spec.embedding], sink, allocate);
    } else if (unit === finalNormUnit(this.numLayers)) {
      if (spec.finalNorm) this.finalNorm = loadStackedVector(source, [spec.finalNorm], sink, allocate);
    } else if (unit === lmHeadUnit(this.numLayers)) {
      // A tied lm_head on a single TP rank is the embedding table itself: shared, not read twice.
      if (isSameSlice(spec.lmHead, spec.embedding) && this.embedding) this.lmHead = this.embedding;
      else if (spec.lmHead) this.lmHead = loadStackedMatrix(source, [spec.lmHead], sink, allocate);
    } else {
      const index = spec.layerSlices.findIndex((slices) => layerUnit(slices.layer) === unit);
      if (index >= 0)
        this.layers[index] = loadLayer(source, spec.layerSlices[index], spec.tp, sink, allocate);
    }
  }

  /**
   * Takes `unit` over from `old` as it is, no copy: its matrix or vector and its arena blocks
   * (the unit's held slices move separately, HeldWeights.moveUnit). For the units a switch keeps
   * in place (unitsKeptInPlace: the embedding or final norm, the same under both layouts).
   */
  adoptUnit(old: ModelWeights, unit: number): void {
    if (this.added.has(unit)) throw new Error(`weight unit ${unit} assembled twice`);
    if (unit === embeddingUnit() && old.embedding) {
      this.embedding = old.embedding;
      old.embedding = undefined;
    } else if (unit === finalNormUnit(this.numLayers) && old.finalNorm) {
      this.finalNorm = old.finalNorm;
      old.finalNorm = undefined;
    } else {
      throw new Error(
        `weight unit ${unit} cannot be kept in place (only a held embedding or final norm can)`,
      );
    }
    this.added.add(unit);
    const blocks = old.unitBlocks?.get(unit);
    if (blocks && this.arena) {
      this.unitBlocks.set(unit, blocks);
      old.unitBlocks!.delete(unit);
    }
  }

  /** The assembled weights; throws when a unit of the shard was never added. */
  build(): ModelWeights {
    const missing = shardUnits(this.spec, this.numLayers).filter((unit) => !this.added.has(unit));
    if (missing.length)
      throw new Error(`weight units ${missing.join(', ')} of the shard were never assembled`);
    const layers = this.layers as LayerWeights[];
    const { embedding, finalNorm, lmHead } = this;
    let numBytes = weightBytes(embedding) + (finalNorm?.byteLength ?? 0);
    if (lmHead !== embedding) numBytes += weightBytes(lmHead);
    for (const layer of layers) {
      numBytes +=
        layer.inputNorm.byteLength + layer.postAttentionNorm.byteLength + (layer.qkvBias?.byteLength ?? 0);
      numBytes +=
        weightBytes(layer.qkv) + weightBytes(layer.o) + weightBytes(layer.gateUp) + weightBytes(layer.down);
    }
    const weights: ModelWeights = { shard: this.spec, embedding, layers, finalNorm, lmHead, numBytes };
    if (this.arena) weights.unitBlocks = this.unitBlocks;
    return weights;
  }
}

/**
 * Loads the weights of one shard (the whole model without one) after validating names, shapes
 * and dtypes. Only the shard's slices are read, each straight from its byte ranges in the
 * safetensors files. With `held`, the raw slices are recorded there too; with `arena`, the
 * weights are blocks of it (the device's re-shards then reuse that memory).
 */
export function loadModelWeights(
  checkpoint: Checkpoint,
  shard?: ShardSpec,
  held?: HeldWeights,
  arena?: WeightArena,
): ModelWeights {
  checkpoint.validate();
  const spec = shard ?? fullShardSpec(checkpoint.config);
  const numLayers = checkpoint.config.numLayers;
  const builder = new ModelWeightsBuilder(spec, numLayers, held, arena);
  const source = checkpointSliceSource(checkpoint);
  for (const unit of shardUnits(spec, numLayers)) builder.addUnit(source, unit);
  return encodeStoredBlockMatrices(builder.build(), checkpoint);
}
