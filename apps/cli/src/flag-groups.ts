/**
 * The flag groups several commands share (see flag-table.ts): the engine's knobs, the local
 * cluster, the backend, the host KV tier, Seesaw, trace output, a remote coordinator and TLS.
 * Defaults come from ENGINE_DEFAULTS, the one place the engine's figures are defined.
 */
import { ENGINE_DEFAULTS } from '@seesaw/protocol';
import { type FlagGroup, stringFlag } from './flag-table.ts';

export const ENGINE_FLAG_GROUP: FlagGroup = {
  title: 'Engine flags',
  flags: [
    stringFlag('threads', 'N', 'worker threads of the kernels, split evenly over the devices', 'all cores'),
    stringFlag(
      'kv-cache-memory',
      'SIZE',
      'device KV cache of an in-process device',
      `${ENGINE_DEFAULTS.kvCacheBytes / 2 ** 20}MiB`,
    ),
    stringFlag(
      'max-num-batched-tokens',
      'N',
      'token budget of one step, prefill chunks and decodes together',
      ENGINE_DEFAULTS.maxNumBatchedTokens,
    ),
    stringFlag('max-num-seqs', 'N', 'sequences running at once', ENGINE_DEFAULTS.maxNumSeqs),
  ],
};

export const HOST_KV_FLAG_GROUP: FlagGroup = {
  title: 'KV dtype and host KV tier',
  flags: [
    stringFlag(
      'kv-dtype',
      'auto|bf16|f16|f32',
      "KV cache element type on devices and host tier (auto: the weights' 16-bit type)",
      ENGINE_DEFAULTS.kvDtype,
    ),
    stringFlag('host-kv-memory', 'SIZE', 'host memory preemption may swap KV to instead of recomputing it'),
    stringFlag(
      'preemption',
      'auto|swap|recompute',
      'auto swaps when the cost model finds it cheaper than recomputing',
      'auto with a host tier',
    ),
  ],
};

export const LOCAL_CLUSTER_FLAG_GROUP: FlagGroup = {
  title: 'Cluster flags',
  flags: [
    stringFlag('devices', 'N', 'device workers (worker threads); must be dp * tp * pp'),
    stringFlag('config', 'DxTyPz', 'their layout D<dp>T<tp>P<pp>, e.g. T2, P2, D2T2'),
    stringFlag(
      'device-memory',
      'SIZE',
      "each device's budget for its weights plus KV cache",
      `the whole checkpoint plus ${ENGINE_DEFAULTS.kvCacheBytes / 2 ** 20}MiB`,
    ),
  ],
};

export const BACKEND_FLAG_GROUP: FlagGroup = {
  title: 'GPU backend',
  flags: [
    stringFlag('backend', 'cpu|webgpu', 'what the device workers compute on', 'cpu'),
    stringFlag('gpus-per-adapter', 'K', 'WebGPU: up to K device workers share the adapter', 1),
  ],
};

export const SEESAW_FLAG_GROUP: FlagGroup = {
  title: 'Seesaw',
  flags: [
    stringFlag('prefill', 'X', 'layout of the prefill phase (instead of --config)'),
    stringFlag('decode', 'Y', 'layout of the decode phase'),
    stringFlag('prefill-token-budget', 'N', 'tokens per prefill step', ENGINE_DEFAULTS.prefillTokenBudget),
    stringFlag(
      'watermark',
      'F',
      'share of device blocks kept free when decode admits',
      ENGINE_DEFAULTS.seesawWatermark,
    ),
    stringFlag(
      'host-low-mark',
      'F',
      'switch back to prefill once host KV use is at most F and prompts wait',
      ENGINE_DEFAULTS.hostLowMark,
    ),
    stringFlag(
      'reshard-route',
      'auto|p2p|host',
      "weights from peer devices, from the host's checkpoint, or whichever is sooner",
      'auto',
    ),
    stringFlag(
      'host-weight-cache',
      'on|off',
      "keep each device's shard under both layouts in host memory (about 2x the weights), so host-route switches copy memory instead of reading the checkpoint",
      'on when about 2.25x the weights fit in half the free RAM',
    ),
  ],
};

export const TRACE_FLAG_GROUP: FlagGroup = {
  title: 'Trace and report',
  flags: [
    stringFlag('trace', 'FILE', 'Chrome trace-event JSON (chrome://tracing, Perfetto)'),
    stringFlag('report', 'FILE.html', 'one self-contained page: summary, tokens/s over time, phase timeline'),
  ],
};

export const TLS_SERVER_FLAG_GROUP: FlagGroup = {
  title: 'TLS (listener)',
  flags: [
    stringFlag('tls-cert', 'F', 'PEM certificate: the listener takes wss:// only'),
    stringFlag('tls-key', 'F', "PEM key of --tls-cert (mode 0600: others' read access refused)"),
  ],
};

export const TLS_CLIENT_FLAG: ReturnType<typeof stringFlag> = stringFlag(
  'tls-ca',
  'F',
  "PEM CA that verifies a wss:// server's certificate",
);
