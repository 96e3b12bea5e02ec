/**
 * A device's shard under each layout kept in host memory (the paper's pinned-host weight
 * copies): raw checkpoint slices in SharedArrayBuffers, read from the checkpoint once per layout
 * and then only copied from, so a re-shard's `host` pieces are a memory copy rather than a
 * checkpoint read. Shared memory so that whoever holds the cache (the device worker now, a
 * host-wide actor later) can hand it to a device thread without a copy.
 */
import {
  type Checkpoint,
  dtypeByteSize,
  type ShardPosition,
  type ShardSpec,
  shardSpec,
  type TensorSlice,
} from '@seesaw/model';
import { HeldWeights } from './held-weights.ts';
import { checkpointSliceSource } from './model-weights.ts';
import { type Rect, rectElements, sliceRect } from './slice-geometry.ts';
import { allUnits, unitSlices } from './weight-units.ts';

function positionKey({ tp, tpRank, pp, ppStage }: ShardPosition): string {
  return `T${tp}P${pp} tp${tpRank} pp${ppStage}`;
}

export class HostWeightCache {
  private readonly held = new HeldWeights();
  private readonly positions = new Set<string>();
  private allocated = 0;

  /** Whether the shard at `position` has been filled in. */
  has(position: ShardPosition): boolean {
    return this.positions.has(positionKey(position));
  }

  /**
   * Reads every slice of the shard at `position` that no held slice contains yet into one new
   * SharedArrayBuffer. Returns the bytes it added.
   */
  fill(checkpoint: Checkpoint, position: ShardPosition): number {
    const key = positionKey(position);
    if (this.positions.has(key)) return 0;
    const numLayers = checkpoint.config.numLayers;
    const spec: ShardSpec = shardSpec(checkpoint.config, position);
    const missing: Array<{ slice: TensorSlice; unit: number; numBytes: number }> = [];
    for (const unit of allUnits(numLayers)) {
      for (const slice of unitSlices(spec, numLayers, unit)) {
        if (this.held.holds(slice) || missing.some((m) => sameSlice(m.slice, slice))) continue;
        const info = checkpoint.info(slice.name);
        missing.push({
          slice,
          unit,
          numBytes: rectElements(sliceRect(slice, info.shape)) * dtypeByteSize(info.dtype),
        });
      }
    }
    const total = missing.reduce((sum, m) => sum + m.numBytes, 0);
    const buffer = new SharedArrayBuffer(total);
    // Touched from JavaScript before the checkpoint is read into it: pages that a read() maps
    // in kernel mode cost a slow first access from user space later (on this VM a page-stride
    // pass over 128 MiB took ~180 ms, then 8 ms), which would land on the run's first switch.
    new Uint8Array(buffer).fill(0);
    const source = checkpointSliceSource(checkpoint);
    let offset = 0;
    for (const { slice, unit, numBytes } of missing) {
      const info = checkpoint.info(slice.name);
      const bytes = new Uint8Array(buffer, offset, numBytes);
      source.read(slice, bytes);
      this.held.hold(slice, unit, info.dtype, info.shape, bytes);
      offset += numBytes;
    }
    this.positions.add(key);
    this.allocated += total;
    return total;
  }

  /** Copies `piece` (inside a filled shard) into `dest`, which holds `destRect` of its tensor; returns the bytes. */
  copyInto(piece: TensorSlice, dest: Uint8Array, destRect: Rect): number {
    return this.held.copyInto(piece, dest, destRect);
  }

  /** Host memory the cache holds. */
  get numBytes(): number {
    return this.allocated;
  }
}

function sameSlice(a: TensorSlice, b: TensorSlice): boolean {
  return a.name === b.name && a.axis === b.axis && a.start === b.start && a.end === b.end;
}
