/**
 * Entry point of the `seesaw` command: picks the subcommand, maps usage mistakes to exit
 * status 2 and other failures to 1.
 */
import { UsageError } from './args.ts';

export const USAGE = `Usage: seesaw [command] [flags]

With no command, runs the built-in main job: generates (once) the small bf16 model under
.seesaw/models, runs 32 random prompts of 128 tokens (64 output tokens, greedy, 2 threads)
through 'seesaw run' into .seesaw/default-results.jsonl and prints the throughput.

Commands:
  run        Complete every prompt of a JSONL file into an OpenAI batch output JSONL file.
             --model DIR --input prompts.jsonl --output results.jsonl
             [--threads N] [--kv-cache-memory SIZE] [--max-num-batched-tokens N] [--max-num-seqs N]
             Input lines: {"prompt": "text" | [ids], "max_tokens", "temperature", "top_p", "top_k",
             "seed", "stop_token_ids", "ignore_eos", "return_token_ids", "custom_id"} or OpenAI batch
             lines {"custom_id", "method": "POST", "url": "/v1/completions", "body": {...}}.
             Re-running with the same --output skips requests already completed there.
  bench      Measure offline throughput (like vLLM benchmark_throughput).
             (--model DIR | --shape NAME [--dtype D]) --num-prompts N
             [--dataset random|FILE.csv|FILE.jsonl] [--input-len I] [--output-len O]
             [--seed S] [--json FILE] [--threads N] [--kv-cache-memory SIZE]
             [--max-num-batched-tokens N] [--max-num-seqs N]
  gen-model  Write a deterministic random Llama checkpoint with a tokenizer.
             --shape tiny|small|medium --out DIR [--seed N] [--dtype bf16|f16|f32] [--max-shard-size SIZE]
  coordinator  Run the many-machines coordinator daemon (HTTP /healthz, /metrics and the
             WebSocket for agents and jobs on one port; first stdout line names the address).
             --listen HOST:PORT --token-file F
  worker     Run a host agent: joins the coordinator, spawns one device worker per device the
             coordinator places here and relays it. --connect ws://HOST:PORT --devices N
             --token-file F [--name HOST]
  cluster-run  Start a coordinator and local agents from a cluster script (JSON: tokenFile,
             listen, hosts [{name, devices}], config, threadsPerDevice, job {model, input,
             output}) and run its job. FILE
  help       Show this text.

Cluster flags (run and bench): --devices N --config DxTyPz [--device-memory SIZE] run the
engine on N device workers (worker threads) laid out D<dp>T<tp>P<pp> (e.g. T2, P2, D2T2; N must
be dp * tp * pp), --threads split evenly over them (at least 1 each). --device-memory is each
device's budget for its weights plus KV cache (default: the whole checkpoint plus 512MiB).

Many machines (run): --cluster ws://HOST:PORT --token-file F --config DxTyPz submits the job to a
running coordinator; output, resume and summary are as for a local run. Each DP replica runs on
one host (TP/PP inside it); --model is the directory as the hosts (and the coordinator) see it.

Host KV tier (run and bench, in-process device or --devices; run --cluster: a kv-store of SIZE
on every host of the job): --host-kv-memory SIZE lets preemption swap a sequence's KV to host
memory instead of recomputing it; --preemption auto|swap|recompute (auto, the default with a host
tier, swaps when the cost model finds it cheaper than recomputing).

Sizes take the units B, KiB, MiB, GiB or TiB (e.g. --kv-cache-memory 1GiB).
Defaults: --threads all cores; --kv-cache-memory, --max-num-batched-tokens and --max-num-seqs
the device's and engine's own; bench --seed 0 (also the generated model's seed), --dtype bf16.
`;

// Loaded on demand: `gen-model` and `help` must work without the native kernels built.
const COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  run: async () => (await import('./commands/run.ts')).runCommand,
  bench: async () => (await import('./commands/bench.ts')).benchCommand,
  'gen-model': async () => (await import('./commands/gen-model.ts')).genModelCommand,
  coordinator: async () => (await import('./commands/coordinator.ts')).coordinatorCommand,
  worker: async () => (await import('./commands/worker.ts')).workerCommand,
  'cluster-run': async () => (await import('./commands/cluster-script.ts')).clusterRunCommand,
};

export async function main(argv: string[]): Promise<number> {
  // `pnpm seesaw -- run ...` passes the separator through.
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  if (args.length === 0) return (await import('./default-job.ts')).defaultJob();
  const [command, ...rest] = args;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const loadHandler = COMMANDS[command];
  if (loadHandler === undefined) {
    throw new UsageError(
      `unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')}, help)`,
    );
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const handler = await loadHandler();
  return handler(rest);
}

async function runMain(): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`seesaw: ${error.message}\nRun 'seesaw help' for usage.\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`seesaw: ${error instanceof Error ? error.message : String(error)}\n`);
      if (process.env.SEESAW_DEBUG) console.error(error);
      process.exitCode = 1;
    }
  }
}

// Run only as the program (bin/seesaw.js or tsx main.ts), not when a test imports USAGE/main.
const entry = process.argv[1] ?? '';
if (entry.endsWith('main.ts') || entry.endsWith('seesaw.js') || entry.endsWith('seesaw')) {
  await runMain();
}
