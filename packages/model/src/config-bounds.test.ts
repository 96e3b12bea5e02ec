/**
 * Issue 13 item 2: config.json dimensions are checked against the tensors in the files when the
 * checkpoint opens, before anything is sized by the config (10^9 layers used to run out of heap).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.ts';
import { generateCheckpoint } from './generate-checkpoint.ts';

let dir: string;
let config: Record<string, unknown>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'seesaw-config-bounds-'));
  await generateCheckpoint({ shape: 'tiny', seed: 13, dtype: 'bf16', outDir: dir });
  config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openWith(fields: Record<string, unknown>): () => Checkpoint {
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...fields }));
  return () => Checkpoint.open(dir);
}

describe('config bounds against the checkpoint files', () => {
  it('item 2: num_hidden_layers 10^9 is refused at open, naming the field and the layers found', () => {
    expect(openWith({ num_hidden_layers: 1_000_000_000 })).toThrow(
      new RegExp(
        `num_hidden_layers is 1000000000, but the checkpoint has tensors for ${config.num_hidden_layers} layers`,
      ),
    );
  });

  it('item 2: a huge hidden_size or vocab_size is refused against the embedding shape', () => {
    expect(openWith({ hidden_size: 1 << 30 })).toThrow(
      /hidden_size 1073741824 does not match model\.embed_tokens\.weight/,
    );
    expect(openWith({ vocab_size: 1 << 30 })).toThrow(/vocab_size 1073741824 x hidden_size/);
  });

  it('item 2: the unchanged config still opens', () => {
    openWith({})().close();
  });
});
