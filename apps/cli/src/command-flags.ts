/**
 * Every command's flags and prose, declared once (see flag-table.ts): the commands parse with
 * `commandFlagSpec(name)` and `seesaw <command> --help` prints `commandUsage(name)`.
 */

import type { FlagSpec } from './args.ts';
import {
  BACKEND_FLAG_GROUP,
  ENGINE_FLAG_GROUP,
  HOST_KV_FLAG_GROUP,
  LOCAL_CLUSTER_FLAG_GROUP,
  SEESAW_FLAG_GROUP,
  TLS_CLIENT_FLAG,
  TLS_SERVER_FLAG_GROUP,
  TRACE_FLAG_GROUP,
} from './flag-groups.ts';
import { type CommandDeclaration, type FlagGroup, parseSpecOf, stringFlag } from './flag-table.ts';
import {
  PLAN_COMMAND,
  PROFILE_COMMAND,
  SIMULATE_COMMAND,
  VALIDATE_COMMAND,
} from './planner-command-flags.ts';
import { RUN_REQUEST_LINES } from './run-request-lines.ts';

/** The OpenAI API's own flags, one declaration for `serve` and `coordinator --http`. */
const SERVICE_API_FLAGS = [
  stringFlag('http', 'HOST:PORT', 'where the API listens (port 0 picks a free one)'),
  stringFlag('state-dir', 'DIR', 'SQLite state and uploaded files'),
  stringFlag('api-key-file', 'F', 'the bearer token clients must send'),
  stringFlag(
    'batch-window-override',
    'DURATION',
    "every batch's completion window instead of 24h (tests and operations; e.g. 2s)",
  ),
];

/** The coordinator's service flags (`--http` and what only makes sense with it). */
export const DAEMON_SERVICE_FLAG_GROUP: FlagGroup = {
  title: "OpenAI batch service in the daemon (--http), running batches on the daemon's hosts",
  flags: [
    ...SERVICE_API_FLAGS,
    stringFlag('model', 'DIR', 'the checkpoint directory the hosts load'),
    stringFlag('config', 'DxTyPz', "the default layout of a batch's engine", 'D1'),
    stringFlag('threads', 'N', 'worker threads of the job, split over its devices'),
    stringFlag('device-memory', 'SIZE', "each device's memory budget"),
    stringFlag('max-num-batched-tokens', 'N', 'token budget of one step'),
    stringFlag('max-num-seqs', 'N', 'sequences in one step'),
    // A Seesaw pair's job (metadata seesaw_prefill/seesaw_decode) parks every sequence here.
    ...HOST_KV_FLAG_GROUP.flags,
  ],
};

function own(flags: FlagGroup['flags']): FlagGroup {
  return { title: 'Flags', flags };
}

const SEESAW_NOTE = `Seesaw: --prefill X --decode Y (same DP and devices per replica in both) runs prefill under
layout X and decode under layout Y on the same dp * tp * pp device workers, re-sharding the weights
between the phases; prefill parks every sequence's KV in the host tier and decode swaps it back in.
It needs a host KV tier: --host-kv-memory SIZE, by default 25% of the free RAM, at most 4GiB.`;

const BACKEND_NOTE = `webgpu runs each device worker on the first WebGPU adapter (Dawn: Vulkan, Metal, D3D12;
lavapipe without a GPU), with every layout (--config D2, T2, P2, ...), the host KV tier and Seesaw
re-sharding; TP all-reduces and PP hand-offs go through host memory. --devices N needs
--gpus-per-adapter K >= N for now (Dawn reaches the first adapter only).`;

const SIZES_NOTE = 'Sizes take the units B, KiB, MiB, GiB or TiB (e.g. --kv-cache-memory 1GiB).';

const REMOTE_CLUSTER_GROUP: FlagGroup = {
  title: 'Many machines',
  flags: [
    stringFlag('cluster', 'ws://HOST:PORT', "a running coordinator's address (wss:// with TLS)"),
    stringFlag('token-file', 'F', "the cluster's token file"),
  ],
};

const RUN_COMMAND: CommandDeclaration = {
  name: 'run',
  summary: 'Complete every prompt of a JSONL file into an OpenAI batch output JSONL file.',
  description: `Re-running with the same --output skips requests already completed there.\n\n${RUN_REQUEST_LINES}`,
  groups: [
    own([
      stringFlag('model', 'DIR', 'the checkpoint directory (or FILE.gguf)'),
      stringFlag('input', 'prompts.jsonl', 'request lines; - reads stdin'),
      stringFlag('output', 'results.jsonl', 'batch output records; - writes them to stdout'),
    ]),
    ENGINE_FLAG_GROUP,
    HOST_KV_FLAG_GROUP,
    LOCAL_CLUSTER_FLAG_GROUP,
    BACKEND_FLAG_GROUP,
    SEESAW_FLAG_GROUP,
    TRACE_FLAG_GROUP,
    { ...REMOTE_CLUSTER_GROUP, flags: [...REMOTE_CLUSTER_GROUP.flags, TLS_CLIENT_FLAG] },
  ],
  notes: [
    SEESAW_NOTE,
    BACKEND_NOTE,
    `Many machines: --cluster ws://HOST:PORT --token-file F --config DxTyPz submits the job to a running
coordinator; output, resume and summary are as for a local run. Each DP replica runs on one host
(TP/PP inside it, or over hosts that accept peer links); --model is the directory as the hosts see
it. With --cluster, --host-kv-memory gives every host of the job a kv-store of SIZE. Seesaw on a
coordinator: --cluster ... --prefill X --decode Y --host-kv-memory SIZE (both layouts wired across
the hosts).`,
    SIZES_NOTE,
  ],
};

const BENCH_COMMAND: CommandDeclaration = {
  name: 'bench',
  summary: 'Measure offline throughput (like vLLM benchmark_throughput).',
  description: 'Needs --model DIR or --shape NAME (a generated model), and --num-prompts N.',
  groups: [
    own([
      stringFlag('model', 'DIR', 'the checkpoint directory (or FILE.gguf)'),
      stringFlag('shape', 'NAME', 'generate a model of this shape instead (tiny|small|medium)'),
      stringFlag('dtype', 'D', "the generated model's dtype", 'bf16'),
      stringFlag('num-prompts', 'N', 'requests to run'),
      stringFlag('dataset', 'random|FILE.csv|FILE.jsonl', 'where the prompts come from', 'random'),
      stringFlag('input-len', 'I', 'prompt tokens of a random request'),
      stringFlag('output-len', 'O', 'output tokens of a request'),
      stringFlag('seed', 'S', "the prompts' seed (also the generated model's)", 0),
      stringFlag('json', 'FILE', 'write the results (or the --compare rows) as JSON'),
      stringFlag('compare', 'RUNS', 'several configurations side by side, e.g. seesaw:P2-T2,static:T2'),
      stringFlag(
        'rounds',
        'N',
        'with --compare: run every configuration N times, interleaved; median run shown',
        1,
      ),
      stringFlag(
        'profile',
        'FILE',
        "with --prefill auto --decode auto: the machine 'seesaw profile' measured",
      ),
    ]),
    ENGINE_FLAG_GROUP,
    HOST_KV_FLAG_GROUP,
    LOCAL_CLUSTER_FLAG_GROUP,
    BACKEND_FLAG_GROUP,
    SEESAW_FLAG_GROUP,
    TRACE_FLAG_GROUP,
  ],
  notes: [
    SEESAW_NOTE,
    `bench --prefill auto --decode auto --profile FILE runs the planner's overall best for this workload
on the machine measured by 'seesaw profile' (its device count): a pair, or a static layout when no
pair beats it (as 'plan' ranks them), and says which.`,
    `Compare (bench): --compare seesaw:P2-T2,static:T2,static:P2 runs the same workload through each
configuration in turn and prints them side by side (requests/s, tokens/s, phase switches, time in
prefill / decode / re-sharding / waiting for KV, share of swap-in time hidden, peak device memory,
host KV memory, KV bytes per swapped token); --json FILE writes the rows. Not with --config, --devices, --prefill, --decode.
--rounds N makes every run N times, round by round in rotated order, and shows each configuration's
median run, every round's tokens/s and share of the best static layout of that round, and the median
of those shares (a machine's drift between rounds cancels within one).`,
    BACKEND_NOTE,
    SIZES_NOTE,
  ],
};

const SERVE_COMMAND: CommandDeclaration = {
  name: 'serve',
  summary: 'OpenAI-compatible batch service on local devices (Files, Batches, completions).',
  description: `Files, Batches (/v1/completions lines), /v1/models and /metrics over HTTP, every route behind
Authorization: Bearer (the key file's token; make one with 'seesaw token'). Files, batches and each
finished request are kept in SQLite under --state-dir: a restarted server continues its batches.`,
  groups: [
    own([stringFlag('model', 'DIR', 'the checkpoint directory (or FILE.gguf)'), ...SERVICE_API_FLAGS]),
    ENGINE_FLAG_GROUP,
    HOST_KV_FLAG_GROUP,
    LOCAL_CLUSTER_FLAG_GROUP,
    SEESAW_FLAG_GROUP,
    REMOTE_CLUSTER_GROUP,
  ],
  notes: [
    "--cluster ws://HOST:PORT --token-file F --config DxTyPz runs the batches on a coordinator's hosts.",
    SIZES_NOTE,
  ],
};

const GEN_MODEL_COMMAND: CommandDeclaration = {
  name: 'gen-model',
  summary: 'Write a deterministic random Llama checkpoint with a tokenizer.',
  groups: [
    own([
      stringFlag('shape', 'tiny|small|medium', 'the model shape'),
      stringFlag('out', 'DIR', 'where to write it'),
      stringFlag('seed', 'N', 'the weights seed', 0),
      stringFlag('dtype', 'bf16|f16|f32', 'the weights dtype', 'bf16'),
      stringFlag('max-shard-size', 'SIZE', 'split the safetensors into shards of at most SIZE'),
    ]),
  ],
};

const QUANTIZE_COMMAND: CommandDeclaration = {
  name: 'quantize',
  summary: "Write a Hugging Face checkpoint as a llama GGUF file (llama.cpp's layout).",
  description: 'run and bench take the FILE.gguf as --model.',
  groups: [
    own([
      stringFlag('model', 'DIR', 'the Hugging Face checkpoint'),
      stringFlag('type', 'q8_0|q4_0|q4_k|f16|bf16|f32', 'the weights type of the file'),
      stringFlag('out', 'FILE.gguf', 'where to write it'),
    ]),
  ],
};

const COORDINATOR_COMMAND: CommandDeclaration = {
  name: 'coordinator',
  summary: 'Run the many-machines coordinator daemon.',
  description: `HTTP /healthz, /metrics and the WebSocket for agents and jobs on one port; the first stdout line
names the address.`,
  groups: [
    own([
      stringFlag('listen', 'HOST:PORT', 'where to listen'),
      stringFlag('token-file', 'F', "the cluster's token file"),
    ]),
    TLS_SERVER_FLAG_GROUP,
    DAEMON_SERVICE_FLAG_GROUP,
  ],
};

const WORKER_COMMAND: CommandDeclaration = {
  name: 'worker',
  summary: 'Run a host agent: joins the coordinator and runs the device workers it places here.',
  groups: [
    own([
      stringFlag('connect', 'ws://HOST:PORT', "the coordinator's address (wss:// with TLS)"),
      stringFlag('devices', 'N', 'device workers this host offers', 1),
      stringFlag('token-file', 'F', "the cluster's token file"),
      stringFlag('name', 'HOST', "this host's name", 'the hostname'),
      stringFlag('peer-listen', 'HOST:PORT', 'where peer agents reach this one'),
      TLS_CLIENT_FLAG,
    ]),
    BACKEND_FLAG_GROUP,
    TLS_SERVER_FLAG_GROUP,
  ],
};

const TOKEN_COMMAND: CommandDeclaration = {
  name: 'token',
  summary: 'Write a new random cluster token.',
  description: 'Token files readable by group/other or shorter than 32 bytes are refused.',
  groups: [own([stringFlag('out', 'F', 'where to write it (mode 0600)')])],
};

const CLUSTER_RUN_COMMAND: CommandDeclaration = {
  name: 'cluster-run',
  summary: 'Start a coordinator and local agents from a cluster script and run its job.',
  description: `seesaw cluster-run FILE: the script is JSON {tokenFile, listen, hosts [{name, devices}], config,
threadsPerDevice, hostKvMemory, kvDtype, job {model, input, output}}; for Seesaw, prefill, decode and
hostKvMemory (required) instead of config.`,
  groups: [],
};

const INFO_COMMAND: CommandDeclaration = {
  name: 'info',
  summary: 'Print the CPU and the kernels chosen for it (int8 path for Q8_0/Q4_0 weights).',
  groups: [],
};

/** Every command, in the order `seesaw help` lists them. */
export const COMMANDS: readonly CommandDeclaration[] = [
  RUN_COMMAND,
  BENCH_COMMAND,
  SERVE_COMMAND,
  GEN_MODEL_COMMAND,
  QUANTIZE_COMMAND,
  COORDINATOR_COMMAND,
  WORKER_COMMAND,
  TOKEN_COMMAND,
  CLUSTER_RUN_COMMAND,
  PLAN_COMMAND,
  SIMULATE_COMMAND,
  PROFILE_COMMAND,
  VALIDATE_COMMAND,
  INFO_COMMAND,
];

export function commandDeclaration(name: string): CommandDeclaration {
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw new Error(`no flag declaration for command '${name}'`);
  return command;
}

/** The parseArgs options `name` parses its flags with. */
export function commandFlagSpec(name: string): FlagSpec {
  return parseSpecOf(commandDeclaration(name));
}
