import { MessageChannel } from 'node:worker_threads';
import type { TensorSlice } from '@seesaw/model';
import { afterEach, describe, expect, it } from 'vitest';
import { type LinkEndpoint, linkEndpoint } from './device-worker-links.ts';
import { WeightPieceReceipts } from './weight-piece-receipts.ts';

// The sender's side of pieces read in place, over a real MessageChannel: a receipt resolves on the
// peer's weightSliceTaken for the same re-shard and slice, in order for a piece sent twice, and
// fails on timeout or when the link closes.

const SLICE: TensorSlice = { name: 'model.layers.0.mlp.down_proj.weight', axis: 'columns', start: 4, end: 8 };
const opened: LinkEndpoint[] = [];
afterEach(() => {
  for (const link of opened.splice(0)) link.close('test done');
});

function linkPair(): { sender: LinkEndpoint; peer: LinkEndpoint } {
  const { port1, port2 } = new MessageChannel();
  const sender = linkEndpoint(port1, 'sender');
  const peer = linkEndpoint(port2, 'peer');
  opened.push(sender, peer);
  return { sender, peer };
}

function taken(link: LinkEndpoint, reshardId: number, slice: TensorSlice): void {
  link.post({ tag: 'weightSliceTaken', reshardId, ...slice });
}

/** Whether `promise` has settled after the port had time to deliver. */
async function isSettled(promise: Promise<void>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  return settled;
}

describe('WeightPieceReceipts', () => {
  it("resolves a receipt on the peer's weightSliceTaken of the same re-shard and slice only", async () => {
    const { sender, peer } = linkPair();
    const receipts = new WeightPieceReceipts();
    receipts.attach(sender, 2);
    const first = receipts.expect(5, 2, SLICE, 10_000);
    const second = receipts.expect(5, 2, SLICE, 10_000);
    const other = receipts.expect(5, 2, { ...SLICE, start: 0, end: 4 }, 10_000);
    expect(receipts.numAwaited).toBe(3);
    taken(peer, 4, SLICE); // another re-shard's
    expect(await isSettled(first)).toBe(false);
    taken(peer, 5, SLICE);
    // Awaited rather than polled: a loaded machine may run a timer before the port's message.
    await first;
    expect(await isSettled(second)).toBe(false);
    expect(await isSettled(other)).toBe(false);
    taken(peer, 5, SLICE);
    taken(peer, 5, { ...SLICE, start: 0, end: 4 });
    await Promise.all([first, second, other]);
    expect(receipts.numAwaited).toBe(0);
  });

  it('fails a receipt on timeout, and every receipt from a peer whose link closed', async () => {
    const { sender, peer } = linkPair();
    const receipts = new WeightPieceReceipts();
    receipts.attach(sender, 1);
    await expect(receipts.expect(1, 1, SLICE, 30)).rejects.toThrow(
      /re-shard 1: device 1 did not take "model.layers.0.mlp.down_proj.weight" columns \[4, 8\) within 30 ms/,
    );
    const waiting = receipts.expect(2, 1, SLICE, 5000);
    peer.close('peer gone');
    await expect(waiting).rejects.toThrow(/link to device 1 closed/);
    await expect(receipts.expect(2, 1, SLICE, 5000)).rejects.toThrow(/link to device 1 is closed/);
    expect(receipts.numAwaited).toBe(0);
  });

  it('reports no unhandled rejection for a receipt nobody awaited', async () => {
    const { sender, peer } = linkPair();
    const receipts = new WeightPieceReceipts();
    receipts.attach(sender, 1);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      receipts.expect(3, 1, SLICE, 10);
      peer.close('peer gone');
      receipts.expect(3, 1, SLICE, 10);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
