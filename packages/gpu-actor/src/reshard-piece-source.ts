/**
 * The source a re-shard assembles one weight unit from: every target slice the builder reads is
 * filled from the plan's pieces that tile it (kept from the device's old slices, received from a
 * peer, or copied from the host weight cache or the checkpoint), and must be covered exactly.
 */
import { type Checkpoint, dtypeByteSize, type ReshardPiece, type TensorSlice } from '@seesaw/model';
import type { HeldWeights } from './held-weights.ts';
import type { HostWeightCache } from './host-weight-cache.ts';
import { checkpointSliceSource, type WeightSliceSource } from './model-weights.ts';
import { containsRect, copyRect, formatRect, type Rect, rectElements, sliceRect } from './slice-geometry.ts';

function sameRect(a: Rect, b: Rect): boolean {
  return a.row0 === b.row0 && a.row1 === b.row1 && a.col0 === b.col0 && a.col1 === b.col1;
}

export function formatSlice(slice: TensorSlice): string {
  return `"${slice.name}" ${slice.axis} [${slice.start}, ${slice.end})`;
}

/** Bytes a switch took from each source so far (the executor reports them). */
export interface Counters {
  bytesKept: number;
  bytesReceived: number;
  bytesFromHost: number;
}

/**
 * A WeightSliceSource over the pieces of one unit (`received`: the peer pieces' bytes, which may
 * be views of a peer's shared memory), adding what each read copied to `counters`.
 */
export function pieceSource(
  pieces: ReshardPiece[],
  received: Map<ReshardPiece, Uint8Array>,
  old: HeldWeights,
  checkpoint: Checkpoint,
  counters: Counters,
  hostWeights: HostWeightCache | undefined,
): WeightSliceSource {
  const hostSource = checkpointSliceSource(checkpoint);
  return {
    tensor: (name) => checkpoint.info(name),
    read(slice, dest) {
      const info = checkpoint.info(slice.name);
      const elementBytes = dtypeByteSize(info.dtype);
      const destRect = sliceRect(slice, info.shape);
      let covered = 0;
      for (const piece of pieces) {
        if (piece.slice.name !== slice.name) continue;
        const rect = sliceRect(piece.slice, info.shape);
        if (!containsRect(destRect, rect)) {
          throw new RangeError(
            `piece ${formatSlice(piece.slice)} lies outside the target ${formatSlice(slice)}`,
          );
        }
        const numBytes = rectElements(rect) * elementBytes;
        if (piece.source.kind === 'keep') {
          counters.bytesKept += old.copyInto(piece.slice, dest, destRect);
        } else if (piece.source.kind === 'peer') {
          const bytes = received.get(piece)!;
          if (bytes.byteLength !== numBytes) {
            throw new RangeError(
              `piece ${formatSlice(piece.slice)} from device ${piece.source.device}: ${bytes.byteLength} bytes, expected ${numBytes}`,
            );
          }
          copyRect(bytes, rect, dest, destRect, rect, elementBytes);
          counters.bytesReceived += numBytes;
        } else if (hostWeights) {
          counters.bytesFromHost += hostWeights.copyInto(piece.slice, dest, destRect);
        } else if (sameRect(rect, destRect)) {
          // The piece is the whole target slice: read straight into its final rows.
          hostSource.read(piece.slice, dest);
          counters.bytesFromHost += numBytes;
        } else {
          const bytes = new Uint8Array(numBytes);
          hostSource.read(piece.slice, bytes);
          copyRect(bytes, rect, dest, destRect, rect, elementBytes);
          counters.bytesFromHost += numBytes;
        }
        covered += rectElements(rect);
      }
      if (covered !== rectElements(destRect)) {
        throw new RangeError(
          `pieces of ${formatSlice(slice)} cover ${covered} of its ${rectElements(destRect)} elements (${formatRect(destRect)})`,
        );
      }
    },
  };
}
