/**
 * The usage text, kept per command so `seesaw <command> --help` prints that command's part only
 * and `seesaw help` prints it all (the same text as one page).
 */
import { readFileSync } from 'node:fs';

const HEAD = `Usage: seesaw [command] [flags]

With no command, runs the built-in main job: generates (once) the small bf16 model under
.seesaw/models, runs 32 random prompts of 128 tokens (64 output tokens, greedy, 2 threads)
through 'seesaw run' into .seesaw/default-results.jsonl and prints the throughput.

`;

/** Each command's block of the 'Commands:' list, in the order `seesaw help` shows them. */
export const COMMAND_USAGE: Readonly<Record<string, string>> = {
  run: `  run        Complete every prompt of a JSONL file into an OpenAI batch output JSONL file.
             --model DIR --input prompts.jsonl --output results.jsonl
             [--threads N] [--kv-cache-memory SIZE] [--max-num-batched-tokens N] [--max-num-seqs N]
             [--trace FILE] [--report FILE]
             Input lines: {"prompt": "text" | [ids], "max_tokens", "temperature", "top_p", "top_k",
             "seed", "stop", "stop_token_ids", "ignore_eos", "return_token_ids", "custom_id"} or OpenAI batch
             lines {"custom_id", "method": "POST", "url": "/v1/completions", "body": {...}}.
             OpenAI fields are accepted at their no-op values (n: 1, stream: false, ...).
             --input - reads stdin; --output - writes the records to stdout.
             Re-running with the same --output skips requests already completed there.`,
  bench: `  bench      Measure offline throughput (like vLLM benchmark_throughput).
             (--model DIR | --shape NAME [--dtype D]) --num-prompts N
             [--dataset random|FILE.csv|FILE.jsonl] [--input-len I] [--output-len O]
             [--seed S] [--json FILE] [--threads N] [--kv-cache-memory SIZE]
             [--max-num-batched-tokens N] [--max-num-seqs N] [--compare RUNS] [--trace FILE] [--report FILE]`,
  serve: `  serve      OpenAI-compatible batch service on local devices: Files, Batches (/v1/completions
             lines), /v1/models and /metrics over HTTP, every route behind Authorization: Bearer
             (the key file's token; make one with 'seesaw token'). Files, batches and each finished
             request are kept in SQLite under --state-dir: a restarted server continues its batches.
             --model DIR --http HOST:PORT --state-dir DIR --api-key-file F [engine flags of run]
             [--cluster ws://HOST:PORT --token-file F --config DxTyPz: run on a coordinator's hosts]
             [--batch-window-override DURATION: every batch's completion window, e.g. 2s (tests)]
             A batch's metadata may pick its engine: seesaw_config (e.g. T2), or seesaw_prefill
             and seesaw_decode (a Seesaw pair, local devices only).`,
  'gen-model': `  gen-model  Write a deterministic random Llama checkpoint with a tokenizer.
             --shape tiny|small|medium --out DIR [--seed N] [--dtype bf16|f16|f32] [--max-shard-size SIZE]`,
  quantize: `  quantize   Write a Hugging Face checkpoint as a llama GGUF file (llama.cpp's layout); run and
             bench take the FILE.gguf as --model. --model DIR --type q8_0|q4_0|q4_k|f16|bf16|f32
             --out FILE.gguf`,
  coordinator: `  coordinator  Run the many-machines coordinator daemon (HTTP /healthz, /metrics and the
             WebSocket for agents and jobs on one port; first stdout line names the address).
             --listen HOST:PORT --token-file F [--tls-cert F --tls-key F: wss:// only]
             [--http HOST:PORT --state-dir DIR --api-key-file F --model DIR [--config DxTyPz]
             [--threads N] [--device-memory SIZE] [--max-num-seqs N] [--max-num-batched-tokens N]
             [--batch-window-override DURATION]:
             the OpenAI batch service of 'serve' in the daemon, batches run on its host agents]`,
  worker: `  worker     Run a host agent: joins the coordinator, spawns one device worker per device the
             coordinator places here and relays it. --connect ws://HOST:PORT --devices N
             --token-file F [--name HOST] [--backend cpu|webgpu [--gpus-per-adapter K]]
             [wss://: --tls-ca F verifies the coordinator and peers;
             --tls-cert F --tls-key F make the peer-link listener TLS only]`,
  token: `  token      Write a new random cluster token: --out F (mode 0600; token files readable by
             group/other or shorter than 32 bytes are refused).`,
  'cluster-run': `  cluster-run  Start a coordinator and local agents from a cluster script (JSON: tokenFile,
             listen, hosts [{name, devices}], config, threadsPerDevice, job {model, input,
             output}) and run its job. FILE`,
  plan: `  plan       Rank every static configuration and every Seesaw (prefill, decode) pair by
             simulated throughput; the last line is the gain of the best pair over the best
             static one. --model PRESET|DIR [--cluster 8xA10|8xL4|8xA100|8xA100-nvlink|2x4xA10
             | --profile FILE] [--workload sharegpt|arxiv|constant:IN:OUT|FILE.jsonl]
             [--num-requests N] [--seed S] [--top N] [--threads N] [--prune F] [--json FILE]
             Presets: llama-2-7b, llama-2-13b, llama-2-70b, llama-3-8b, llama-3-15b,
             llama-3-70b, codellama-34b. Defaults: --cluster 8xA10, --workload sharegpt (2000
             requests; arxiv 500), --top 5, --prune 2 (candidates slower than 2x the best of
             their list are cut short), one worker thread per core (at most 8). GPU presets
             use the profiles fitted to measured GPU tables (see validate);
             --assumed-profiles uses datasheet peaks x assumed efficiencies instead.`,
  simulate: `  simulate   Predict what 'seesaw bench' measures, from the cost model and the engine's own
             schedulers. --model PRESET|DIR (or --model-dir DIR) (--config X | --prefill X
             --decode Y) [--cluster SPEC | --profile FILE] [--devices N] [--device-memory SIZE]
             [--host-memory SIZE] [--workload ...] [--num-requests N] [--seed S]
             [--max-num-batched-tokens N] [--max-num-seqs N] [--reshard-route auto|p2p|host]
             [--trace FILE] [--json FILE] [--assumed-profiles]. --host-memory is host KV
             memory per device.`,
  profile: `  profile    Measure this machine (kernels, shared-memory all-reduce, memory copies) as a
             cluster profile for plan/simulate --profile. --out FILE [--devices N]
             [--threads N per device] [--device-memory SIZE] [--host-memory SIZE] [--quick]`,
  validate: `  validate   Hold the planner's fitted GPU profiles against measured per-op and collective
             timings: median and worst error per GPU and op; exit 1 when a median exceeds
             10%. --calibration DIR (Vidur's table layout; packages/planner/calibration/vidur)`,
  info: `  info       Print the CPU and the kernels chosen for it (int8 path for Q8_0/Q4_0 weights).`,
  help: `  help       Show this text.`,
};

/** The paragraphs after the command list and the commands they apply to (undefined: every command). */
const NOTES: ReadonlyArray<{ commands?: readonly string[]; text: string }> = [
  {
    commands: ['run', 'bench', 'serve'],
    text: `Cluster flags (run and bench): --devices N --config DxTyPz [--device-memory SIZE] run the
engine on N device workers (worker threads) laid out D<dp>T<tp>P<pp> (e.g. T2, P2, D2T2; N must
be dp * tp * pp), --threads split evenly over them (at least 1 each). --device-memory is each
device's budget for its weights plus KV cache (default: the whole checkpoint plus 512MiB).`,
  },
  {
    commands: ['run', 'bench'],
    text: `GPU backend (run and bench): --backend cpu|webgpu (default cpu). webgpu runs each device worker
on the first WebGPU adapter (Dawn: Vulkan, Metal, D3D12; lavapipe without a GPU), one whole model
per device: --config Dn only, no host KV tier or Seesaw re-sharding yet. --gpus-per-adapter K
lets up to K device workers share the adapter (--devices N needs K >= N for now).`,
  },
  {
    commands: ['run'],
    text: `Many machines (run): --cluster ws://HOST:PORT --token-file F --config DxTyPz submits the job to a
running coordinator; output, resume and summary are as for a local run. Each DP replica runs on
one host (TP/PP inside it); --model is the directory as the hosts (and the coordinator) see it.
--cluster wss://HOST:PORT --tls-ca F verifies the coordinator's certificate against CA file F.`,
  },
  {
    commands: ['run', 'bench'],
    text: `Host KV tier (run and bench, in-process device or --devices; run --cluster: a kv-store of SIZE
on every host of the job): --host-kv-memory SIZE lets preemption swap a sequence's KV to host
memory instead of recomputing it; --preemption auto|swap|recompute (auto, the default with a host
tier, swaps when the cost model finds it cheaper than recomputing).`,
  },
  {
    commands: ['run', 'bench'],
    text: `Seesaw (run and bench): --prefill X --decode Y (e.g. --prefill P2 --decode T2; D<dp>T<tp>P<pp>,
same DP and devices per replica in both) runs prefill under layout X and decode under layout Y on
the same dp * tp * pp device workers, re-sharding the weights between the phases; prefill parks
every sequence's KV in the host tier and decode swaps it back in. Instead of --config (a static
layout; giving both is an error). Needs a host KV tier: --host-kv-memory SIZE, by default 25% of
the free RAM, at most 4GiB. [--devices N] (must match) [--device-memory SIZE]
[--prefill-token-budget N] (tokens per prefill step, default 4096) [--watermark F] (device
blocks kept free when decode admits, default 0.1) [--host-low-mark F] (switch back to prefill
once host KV use is at most F and prompts wait, default 0.2) [--reshard-route auto|p2p|host]
(weights from peer devices, from the host's checkpoint, or whichever is sooner; default auto).
bench --prefill auto --decode auto --profile FILE runs the planner's overall best for this
workload on the machine measured by 'seesaw profile' (its device count): a pair, or a static
layout when no pair beats it (as 'plan' ranks them), and says which.`,
  },
  {
    commands: ['bench'],
    text: `Compare (bench): --compare seesaw:P2-T2,static:T2,static:P2 runs the same workload through each
configuration in turn and prints them side by side (requests/s, tokens/s, phase switches, time in
prefill / decode / re-sharding / waiting for KV, share of swap-in time hidden, peak device memory,
host KV memory); --json FILE writes the rows. Not with --config, --devices, --prefill, --decode.`,
  },
  {
    commands: ['run', 'bench'],
    text: `Trace and report (run and bench, also --compare): --trace FILE writes a Chrome trace-event JSON
(open in chrome://tracing or Perfetto: steps, re-shards and KV transfers per replica and device);
--report FILE.html writes one self-contained page with the summary table, tokens/s over time and
the phase timeline.`,
  },
  {
    text: `Sizes take the units B, KiB, MiB, GiB or TiB (e.g. --kv-cache-memory 1GiB).
Defaults: --threads all cores; --kv-cache-memory, --max-num-batched-tokens and --max-num-seqs
the device's and engine's own; bench --seed 0 (also the generated model's seed), --dtype bf16.`,
  },
];

/** The whole page: what `seesaw help` and `seesaw --help` print. */
export const USAGE = `${HEAD}Commands:\n${Object.values(COMMAND_USAGE).join('\n')}\n\n${NOTES.map((note) => note.text).join('\n\n')}\n`;

/** One command's usage: its block of the command list and the notes that apply to it. */
export function commandUsage(command: string): string {
  const block = COMMAND_USAGE[command];
  if (block === undefined) throw new Error(`no usage for command '${command}'`);
  const notes = NOTES.filter((note) => note.commands === undefined || note.commands.includes(command));
  const lines = block.split('\n').map((line) => line.replace(/^ {2}/, ''));
  return [
    `Usage: seesaw ${command} [flags]`,
    '',
    ...lines,
    ...notes.flatMap((note) => ['', note.text]),
    '',
  ].join('\n');
}

/** The CLI's version, from its package.json. */
export function cliVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return String(packageJson.version);
}
