// The layout type and grammar live in @seesaw/protocol (one definition); re-exported for callers of the model.
export {
  type DeviceRank,
  deviceRanks,
  formatParallelConfig,
  numDevices,
  type ParallelConfig,
  ParallelConfigError,
  parseParallelConfig,
} from '@seesaw/protocol';
export {
  asciiMergeStrings,
  BOS_TOKEN,
  buildByteLevelBpeTokenizer,
  byteToUnicodeTable,
  EOS_TOKEN,
  type TokenizerFiles,
  UNK_TOKEN,
} from './byte-level-bpe.ts';
export { Checkpoint } from './checkpoint.ts';
export { type InitDistribution, initDistribution } from './checkpoint-init.ts';
export { configBoundProblems, type TensorShapes } from './config-bounds.ts';
export {
  bf16BitsToF32,
  decodeValues,
  dtypeByteSize,
  encodeF32Array,
  encodeValues,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from './dtype-convert.ts';
export { type ExpectedTensor, expectedTensors } from './expected-tensors.ts';
export {
  type GenerateCheckpointOptions,
  generateCheckpoint,
  generatedConfigJson,
} from './generate-checkpoint.ts';
export { dequantize } from './ggml-dequantize.ts';
export { QUANTIZE_TYPES, type QuantizeTypeName, quantize } from './ggml-quantize.ts';
export {
  GGML_TYPES,
  type GgmlTypeInfo,
  type GgmlTypeName,
  ggmlType,
  isQuantized,
  QK_K,
} from './ggml-types.ts';
export {
  type ConvertToGgufOptions,
  convertToGguf,
  GGUF_TARGET_TYPES,
  type GgufTargetType,
} from './gguf-convert.ts';
export { type GgufTensorInfo, type GgufValue, GgufValueType, gguf } from './gguf-format.ts';
export { GgufFile } from './gguf-reader.ts';
export { GgufTensors } from './gguf-tensors.ts';
export { GgufStreamWriter, type GgufTensorSpec, writeGguf } from './gguf-writer.ts';
export { kvDtypeForCheckpoint, resolveKvDtype } from './kv-dtype.ts';
export {
  loadConfigJson,
  type ModelConfig,
  ModelConfigError,
  parseModelConfig,
  type RopeScaling,
  SUPPORTED_ARCHITECTURES,
} from './model-config.ts';
export { isGgufPath, loadModelConfig } from './model-location.ts';
export { isModelShapeName, MODEL_SHAPES, type ModelShape, type ModelShapeName } from './model-shapes.ts';
export { validateForModel } from './parallel-config.ts';
export { seedFor, Xoshiro128 } from './prng.ts';
export { ReferenceModel } from './reference-forward.ts';
export {
  loadReferenceWeights,
  type ReferenceLayerWeights,
  type ReferenceWeights,
  readTensorF64,
} from './reference-weights.ts';
export {
  type DeviceReshardPlan,
  type PieceSend,
  type PieceSource,
  planReshard,
  type ReshardLinkRates,
  type ReshardPiece,
  type ReshardPlan,
  ReshardPlanError,
  type ReshardPlanOptions,
  type ReshardRoute,
  reshardUnitCount,
  shardUnitSlices,
  type TensorBytesInfo,
  type UnitSlice,
  unitsKeptInPlace,
} from './reshard-plan.ts';
export { ropeInvFreq } from './rope.ts';
export {
  CheckpointError,
  MAX_HEADER_BYTES,
  numElements,
  SUPPORTED_DTYPES,
  type TensorDType,
  type TensorInfo,
} from './safetensors-format.ts';
export { SafetensorsStreamWriter, writeSafetensors } from './safetensors-writer.ts';
export {
  balancedRange,
  fullShardSpec,
  type IndexRange,
  type LayerSlices,
  type ShardPosition,
  type ShardSpec,
  shardSpec,
  shardTensorSlices,
  type TensorSlice,
} from './sharding.ts';
export { SeesawTokenizer } from './tokenizer.ts';
