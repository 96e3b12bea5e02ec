/**
 * The coordinator-side wiring of a LocalCluster: which device gets which end of which channel
 * and which TP group descriptor, checked by sending through the ports.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { parseParallelConfig } from '@seesaw/model';
import { linkTransferList } from '@seesaw/protocol';
import { describe, expect, it } from 'vitest';
import { wireLayout, wireReshardMesh } from './layout-wiring.ts';

/** Whether a message posted on `from` arrives on `to` (both ends closed afterwards). */
function isJoined(from: MessagePort, to: MessagePort): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 200);
    to.once('message', (value) => {
      clearTimeout(timer);
      resolve(value === 'ping');
    });
    from.postMessage('ping');
  });
}

function closeAll(ports: Array<MessagePort | undefined>): void {
  for (const port of ports) port?.close();
}

describe('wireLayout', () => {
  it('links TP rank r of stage s to TP rank r of stage s + 1 inside each replica, and groups each (dp, stage)', async () => {
    const groupsMade: number[] = [];
    let nextGroup = 0;
    const wiring = wireLayout(parseParallelConfig('D2T2P2'), (size) => {
      groupsMade.push(size);
      const group = nextGroup++;
      return Array.from({ length: size }, (_, rank) => ({ group, rank }));
    });
    expect(groupsMade).toEqual([2, 2, 2, 2]);
    // Device (dp, stage, tp) = (dp * 2 + stage) * 2 + tp.
    expect(wiring.groups).toEqual([
      { group: 0, rank: 0 },
      { group: 0, rank: 1 },
      { group: 1, rank: 0 },
      { group: 1, rank: 1 },
      { group: 2, rank: 0 },
      { group: 2, rank: 1 },
      { group: 3, rank: 0 },
      { group: 3, rank: 1 },
    ]);
    const { pipeline } = wiring;
    for (const first of [0, 1, 4, 5]) {
      expect(pipeline[first].previous).toBeUndefined();
      expect(pipeline[first + 2].next).toBeUndefined();
      expect(await isJoined(pipeline[first].next!, pipeline[first + 2].previous!)).toBe(true);
    }
    expect(await isJoined(pipeline[0].next!, pipeline[3].previous!)).toBe(false);
    closeAll(pipeline.flatMap((link) => [link.previous, link.next]));
  });

  it('needs a group factory only when tp > 1', () => {
    expect(() => wireLayout(parseParallelConfig('T2'), undefined)).toThrow(
      /TP 2 needs options.createTpGroup/,
    );
    const wiring = wireLayout(parseParallelConfig('P2'), undefined);
    expect(wiring.groups).toEqual([undefined, undefined]);
    closeAll(wiring.pipeline.flatMap((link) => [link.previous, link.next]));
  });
});

describe('wireReshardMesh', () => {
  it('joins every pair of devices of a replica, and no device of one replica to another', async () => {
    const mesh = wireReshardMesh(2, 3);
    expect(mesh).toHaveLength(6);
    for (const [device, peers] of mesh.entries()) {
      expect(peers).toHaveLength(3);
      expect(peers.indexOf(undefined)).toBe(device % 3);
      expect(peers.filter((port) => port === undefined)).toHaveLength(1);
    }
    for (const base of [0, 3]) {
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) {
          if (i !== j) expect(await isJoined(mesh[base + i][j]!, mesh[base + j][i]!)).toBe(true);
        }
      }
    }
    closeAll(mesh.flat());
  });
});

describe('linkTransferList', () => {
  it('lists every port once, however often the links name it', () => {
    const { port1: a, port2: b } = new MessageChannel();
    const { port1: c, port2: d } = new MessageChannel();
    const list = linkTransferList({
      previous: a,
      kvStore: d,
      layouts: [{ previous: a }, { next: b }],
      reshardPeers: [undefined, c],
    });
    expect(list).toEqual([a, d, b, c]);
    closeAll([a, b, c, d]);
  });
});
