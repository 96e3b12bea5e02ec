import { MessageChannel } from 'node:worker_threads';
import type { TensorSlice } from '@seesaw/model';
import { afterEach, describe, expect, it } from 'vitest';
import { type LinkEndpoint, linkEndpoint } from './device-worker-links.ts';
import { WeightSliceInbox } from './weight-slice-inbox.ts';

const SLICE: TensorSlice = { name: 'model.layers.0.mlp.down_proj.weight', axis: 'columns', start: 4, end: 8 };
const opened: LinkEndpoint[] = [];
afterEach(() => {
  for (const link of opened.splice(0)) link.close('test done');
});

function linkPair(): { sender: LinkEndpoint; receiver: LinkEndpoint } {
  const { port1, port2 } = new MessageChannel();
  const sender = linkEndpoint(port1, 'sender');
  const receiver = linkEndpoint(port2, 'receiver');
  opened.push(sender, receiver);
  return { sender, receiver };
}

function send(link: LinkEndpoint, reshardId: number, slice: TensorSlice, bytes: number[]): void {
  const data = Uint8Array.from(bytes);
  link.post({ tag: 'weightSlice', reshardId, ...slice }, [{ dtype: 'u8', shape: [data.length], data }]);
}

describe('WeightSliceInbox', () => {
  it('hands each piece to the take() of its re-shard, sender and slice, whichever comes first', async () => {
    const { sender, receiver } = linkPair();
    const inbox = new WeightSliceInbox();
    inbox.attach(receiver, 3);
    // Arrives before anyone asks (a peer that started its re-shard earlier).
    send(sender, 7, SLICE, [1, 2, 3]);
    send(sender, 8, SLICE, [9]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(inbox.numBuffered).toBe(2);
    expect(Array.from(await inbox.take(7, 3, SLICE, 1000))).toEqual([1, 2, 3]);
    // Asked before it arrives.
    const other = { ...SLICE, start: 0, end: 4 };
    const waiting = inbox.take(7, 3, other, 1000);
    send(sender, 7, other, [4, 5]);
    expect(Array.from(await waiting)).toEqual([4, 5]);
    // A later re-shard drops what an earlier one left behind.
    send(sender, 6, SLICE, [0]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    inbox.discardBefore(8);
    expect(inbox.numBuffered).toBe(1);
    expect(Array.from(await inbox.take(8, 3, SLICE, 1000))).toEqual([9]);
  });

  it('fails a take on timeout, and every take from a peer whose link closed', async () => {
    const { sender, receiver } = linkPair();
    const inbox = new WeightSliceInbox();
    inbox.attach(receiver, 1);
    await expect(inbox.take(1, 1, SLICE, 30)).rejects.toThrow(
      /re-shard 1: "model.layers.0.mlp.down_proj.weight" columns \[4, 8\) from device 1 did not come within 30 ms/,
    );
    const waiting = inbox.take(2, 1, SLICE, 5000);
    sender.close('peer gone');
    await expect(waiting).rejects.toThrow(/link to device 1 closed/);
    await expect(inbox.take(2, 1, SLICE, 5000)).rejects.toThrow(/link to device 1 is closed/);
  });
});
