/**
 * Which element type a KV cache gets for a checkpoint (--kv-dtype). `auto` follows the weights'
 * 16-bit type, as vLLM's auto does: a bf16 checkpoint gets bf16 KV, an f16 one f16 KV. A
 * quantized GGUF (Q8_0, Q4_0, Q4_K...) gets f16 KV, llama.cpp's default KV type for such files. An f32
 * checkpoint keeps f32 KV: whoever stored f32 weights asked for full precision.
 */
import type { KvCacheDType, KvDTypeSetting } from '@seesaw/protocol';
import { Checkpoint } from './checkpoint.ts';

/** The matrix whose stored type stands for the checkpoint's (every matrix shares one dtype). */
const PROBE_MATRIX = 'model.layers.0.self_attn.q_proj.weight';

/** The KV dtype `setting` means for the open checkpoint. */
export function kvDtypeForCheckpoint(setting: KvDTypeSetting, checkpoint: Checkpoint): KvCacheDType {
  if (setting !== 'auto') return setting;
  if (checkpoint.isStoredQuantized(PROBE_MATRIX)) return 'f16';
  const stored = checkpoint.info(PROBE_MATRIX).dtype;
  return stored === 'BF16' ? 'bf16' : stored === 'F16' ? 'f16' : 'f32';
}

/** kvDtypeForCheckpoint for the checkpoint in `modelDir`; reads only its header (and none for a concrete setting). */
export function resolveKvDtype(setting: KvDTypeSetting, modelDir: string): KvCacheDType {
  if (setting !== 'auto') return setting;
  const checkpoint = Checkpoint.open(modelDir);
  try {
    return kvDtypeForCheckpoint(setting, checkpoint);
  } finally {
    checkpoint.close();
  }
}
