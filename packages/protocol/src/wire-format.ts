/** Constants of the frame layout shared by the encoder (codec.ts) and the validator. */

/** Version of the frame layout (message schemas are versioned by PROTOCOL_VERSION). */
export const WIRE_FORMAT_VERSION = 1;
/** Largest msgpack header accepted; tensors go out of band, so real headers are small. */
export const MAX_HEADER_BYTES = 1 << 20;
/** Inline tensors start at multiples of this from the frame start. */
export const TENSOR_ALIGNMENT = 8;
/** Most tensors one frame may carry. */
export const MAX_TENSORS_PER_FRAME = 4096;

export function alignUp(n: number, alignment = TENSOR_ALIGNMENT): number {
  return Math.ceil(n / alignment) * alignment;
}
