/**
 * Seesaw against llama.cpp on the same GGUF files, side by side (issue 14): for each file and
 * batch size, B random 128-token prompts then 64 greedy tokens each (ignore EOS), 2 threads,
 * total and output tokens/s of both engines in alternating runs, and how many leading greedy
 * tokens the two engines agree on. llama.cpp is not a dependency of this repository: it runs
 * through an install of the npm package `node-llama-cpp` (its prebuilt CPU binaries, no build)
 * that you point at with --llama-dir:
 *
 *   mkdir /opt/llama && cd /opt/llama && npm init -y && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm i node-llama-cpp
 *   pnpm bench:llamacpp --llama-dir /opt/llama --models a-q8_0.gguf,a-q4_0.gguf [--batches 1,32] [--rounds 2]
 *
 * Our side is `seesaw run` on a JSONL file of the same token-id prompts; its figures are the
 * run's generation time (model loading excluded on both sides).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const PROMPT = 128;
const OUTPUT = 64;
const { values } = parseArgs({
  options: {
    'llama-dir': { type: 'string' },
    models: { type: 'string' },
    batches: { type: 'string', default: '1,32' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
  },
});
if (!values['llama-dir'] || !values.models) {
  console.error(
    'usage: pnpm bench:llamacpp --llama-dir DIR --models A.gguf,B.gguf [--batches 1,32] [--rounds 2]',
  );
  process.exit(2);
}
const threads = Number(values.threads);
const cli = new URL('../bin/seesaw.js', import.meta.url).pathname;
const workDir = mkdtempSync(join(tmpdir(), 'seesaw-llamacpp-'));

interface Figures {
  totalTps: number;
  outputTps: number;
  tokens: number[][];
}

/** B prompts of random ids (a fixed seed, so both engines read the same ones). */
function prompts(batch: number): number[][] {
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state;
  };
  return Array.from({ length: batch }, () => Array.from({ length: PROMPT }, () => 3 + (next() % 31000)));
}

function runSeesaw(model: string, batch: number): Figures {
  const input = join(workDir, `prompts-${batch}.jsonl`);
  const output = join(workDir, `out-${batch}.jsonl`);
  const lines = prompts(batch).map((prompt, i) =>
    JSON.stringify({
      custom_id: `p${i}`,
      prompt,
      max_tokens: OUTPUT,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    }),
  );
  writeFileSync(input, `${lines.join('\n')}\n`);
  rmSync(output, { force: true });
  const args = ['run', '--model', model, '--input', input, '--output', output, '--threads', String(threads)];
  const summary = execFileSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const match = /Tokens\/s: ([\d.]+) output, ([\d.]+) total/.exec(summary);
  if (!match) throw new Error(`no throughput line in seesaw run's summary:\n${summary}`);
  const records = readFileSync(output, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  records.sort((a, b) => Number(a.custom_id.slice(1)) - Number(b.custom_id.slice(1)));
  return {
    outputTps: Number(match[1]),
    totalTps: Number(match[2]),
    tokens: records.map((r) => r.response.body.choices[0].token_ids ?? []),
  };
}

async function runLlamaCpp(model: string, batch: number): Promise<Figures> {
  const entry = join(values['llama-dir']!, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  const { getLlama, LlamaLogLevel } = await import(pathToFileURL(entry).href);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const loaded = await llama.loadModel({ modelPath: model, gpuLayers: 0 });
  const context = await loaded.createContext({
    sequences: batch,
    contextSize: batch * (PROMPT + OUTPUT + 16),
    batchSize: 2048,
    threads,
  });
  const start = performance.now();
  const tokens = await Promise.all(
    prompts(batch).map(async (prompt) => {
      const sequence = context.getSequence();
      const out: number[] = [];
      for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
        out.push(token);
        if (out.length >= OUTPUT) break;
      }
      return out;
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await context.dispose();
  await loaded.dispose();
  await llama.dispose();
  const outputs = tokens.reduce((sum, t) => sum + t.length, 0);
  return { totalTps: (batch * PROMPT + outputs) / seconds, outputTps: outputs / seconds, tokens };
}

/** Mean over sequences of the leading tokens both engines chose alike. */
function agreement(a: number[][], b: number[][]): number {
  const prefix = a.map((tokens, i) => {
    let n = 0;
    while (n < tokens.length && tokens[n] === b[i]?.[n]) n++;
    return n;
  });
  return prefix.reduce((sum, n) => sum + n, 0) / prefix.length;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(
  `llama.cpp: node-llama-cpp in ${values['llama-dir']}; ${threads} threads, prompt ${PROMPT}, output ${OUTPUT}`,
);
console.log(
  '| file | batch | seesaw total tok/s | llama.cpp total tok/s | ratio | greedy tokens agreeing (of 64) |',
);
console.log('|---|---|---|---|---|---|');
for (const model of values.models.split(',')) {
  for (const batch of values.batches.split(',').map(Number)) {
    const ours: Figures[] = [];
    const theirs: Figures[] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      ours.push(runSeesaw(model, batch));
      theirs.push(await runLlamaCpp(model, batch));
    }
    const a = median(ours.map((f) => f.totalTps));
    const b = median(theirs.map((f) => f.totalTps));
    const agree = agreement(ours[0].tokens, theirs[0].tokens);
    console.log(
      `| ${basename(model)} | ${batch} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}x | ${agree.toFixed(1)} |`,
    );
  }
}
rmSync(workDir, { recursive: true, force: true });
