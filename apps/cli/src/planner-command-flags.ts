/** The flags and prose of the planner's commands: plan, simulate, profile, validate (see flag-table.ts). */
import { booleanFlag, type CommandDeclaration, type FlagGroup, stringFlag } from './flag-table.ts';

const PLANNER_FLAG_GROUP: FlagGroup = {
  title: 'Planner flags',
  flags: [
    stringFlag('model', 'PRESET|DIR', 'a preset (llama-2-7b, llama-3-8b, ...) or a checkpoint directory'),
    stringFlag('model-dir', 'DIR', 'a checkpoint directory'),
    stringFlag('cluster', 'SPEC', '8xA10|8xL4|8xA100|8xA100-nvlink|2x4xA10', '8xA10'),
    stringFlag('profile', 'FILE', "a cluster profile measured by 'seesaw profile' instead of --cluster"),
    booleanFlag('assumed-profiles', 'datasheet peaks x assumed efficiencies instead of the fitted profiles'),
    stringFlag('devices', 'N', 'devices of the cluster'),
    stringFlag('device-memory', 'SIZE', "each device's memory"),
    stringFlag('host-memory', 'SIZE', 'host KV memory per device'),
    stringFlag(
      'kv-dtype',
      'auto|bf16|f16|f32',
      "KV cache element type (auto: the weights' 16-bit type)",
      "the profile's: f32 on CPUs",
    ),
    stringFlag('workload', 'sharegpt|arxiv|constant:IN:OUT|FILE.jsonl', 'the requests', 'sharegpt'),
    stringFlag('num-requests', 'N', 'requests of the workload', '2000; arxiv 500'),
    stringFlag('seed', 'S', "the workload's seed"),
    stringFlag('max-num-batched-tokens', 'N', 'token budget of one step'),
    stringFlag('max-num-seqs', 'N', 'sequences running at once'),
    stringFlag('json', 'FILE', 'write the result as JSON'),
  ],
};

const PRESETS_NOTE = `Presets: llama-2-7b, llama-2-13b, llama-2-70b, llama-3-8b, llama-3-15b, llama-3-70b,
codellama-34b. GPU presets use the profiles fitted to measured GPU tables (see validate).`;

export const PLAN_COMMAND: CommandDeclaration = {
  name: 'plan',
  summary: 'Rank every static configuration and every Seesaw pair by simulated throughput.',
  description: `Ranks every static configuration and every Seesaw (prefill, decode) pair; the last line is the
gain of the best pair over the best static one.`,
  groups: [
    PLANNER_FLAG_GROUP,
    {
      title: 'Flags',
      flags: [
        stringFlag('top', 'N', 'rows to print', 5),
        stringFlag('threads', 'N', 'worker threads', 'one per core, at most 8'),
        stringFlag('prune', 'F', 'cut candidates slower than F x the best of their list short', 2),
      ],
    },
  ],
  notes: [PRESETS_NOTE],
};

export const SIMULATE_COMMAND: CommandDeclaration = {
  name: 'simulate',
  summary: "Predict what 'seesaw bench' measures, from the cost model and the engine's schedulers.",
  description: 'Needs --model PRESET|DIR (or --model-dir DIR) and --config X or --prefill X --decode Y.',
  groups: [
    PLANNER_FLAG_GROUP,
    {
      title: 'Flags',
      flags: [
        stringFlag('config', 'X', 'a static layout D<dp>T<tp>P<pp>'),
        stringFlag('prefill', 'X', 'the Seesaw prefill layout'),
        stringFlag('decode', 'Y', 'the Seesaw decode layout'),
        stringFlag('reshard-route', 'auto|p2p|host', 'where re-sharded weights come from', 'auto'),
        stringFlag('trace', 'FILE', 'Chrome trace-event JSON of the simulated run'),
      ],
    },
  ],
  notes: [PRESETS_NOTE],
};

export const PROFILE_COMMAND: CommandDeclaration = {
  name: 'profile',
  summary: 'Measure this machine as a cluster profile for plan/simulate --profile.',
  description: 'Measures the kernels, the shared-memory all-reduce and memory copies.',
  groups: [
    {
      title: 'Flags',
      flags: [
        stringFlag('out', 'FILE', 'where to write the profile'),
        stringFlag('devices', 'N', 'devices to profile'),
        stringFlag('threads', 'N', 'threads per device'),
        stringFlag('device-memory', 'SIZE', "each device's memory"),
        stringFlag('host-memory', 'SIZE', 'host KV memory per device'),
        booleanFlag('quick', 'fewer repetitions (with --backend webgpu: small kernel sizes too)'),
        stringFlag('backend', 'cpu|webgpu', "whose kernels give the device's compute figures", 'cpu'),
      ],
    },
  ],
};

export const VALIDATE_COMMAND: CommandDeclaration = {
  name: 'validate',
  summary: "Hold the planner's fitted GPU profiles against measured per-op and collective timings.",
  description: 'Prints median and worst error per GPU and op; exits 1 when a median exceeds 10%.',
  groups: [
    {
      title: 'Flags',
      flags: [stringFlag('calibration', 'DIR', "Vidur's table layout (packages/planner/calibration/vidur)")],
    },
  ],
};
