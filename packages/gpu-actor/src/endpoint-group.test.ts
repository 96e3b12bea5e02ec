import {
  connectWebSocket,
  createInProcessPair,
  type DeviceToDevice,
  type Endpoint,
  INBOUND_TAGS,
  listenWebSocket,
} from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { EndpointGroup, type PeerLink } from './endpoint-group.ts';
import { sumByHalvingTree } from './tensor-parallel-group.ts';

type Link = Endpoint<DeviceToDevice, DeviceToDevice>;

/** A full mesh of in-process links (encoded: frames go through the codec and validation). */
function inProcessMesh(size: number): PeerLink[][] {
  const links: PeerLink[][] = Array.from({ length: size }, () => new Array(size));
  for (let a = 0; a < size; a++) {
    for (let b = a + 1; b < size; b++) {
      const [ab, ba] = createInProcessPair<DeviceToDevice, DeviceToDevice>({
        accepts: [INBOUND_TAGS.deviceToDevice, INBOUND_TAGS.deviceToDevice],
      });
      links[a][b] = ab as Link;
      links[b][a] = ba as Link;
    }
  }
  return links;
}

function randomBuffers(size: number, length: number): Float32Array[] {
  return Array.from({ length: size }, () => Float32Array.from({ length }, () => Math.random() * 2 - 1));
}

function expectedSum(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts[0].length);
  sumByHalvingTree(out, parts);
  return out;
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('EndpointGroup', () => {
  it.each([2, 3, 4])(
    'all-reduces and all-gathers bit-identically on %i ranks over encoded links',
    async (size) => {
      const mesh = inProcessMesh(size);
      const groups = mesh.map((peers, rank) => new EndpointGroup(rank, peers));
      for (let round = 0; round < 3; round++) {
        const inputs = randomBuffers(size, 1000 + round);
        const buffers = inputs.map((b) => b.slice());
        await Promise.all(groups.map((group, rank) => group.allReduceSum(buffers[rank])));
        const expected = expectedSum(inputs);
        for (const buffer of buffers) expect(buffer).toEqual(expected);

        const locals = inputs.map((b, rank) => b.subarray(0, 10 + rank));
        const outs = groups.map(() => new Float32Array(locals.reduce((sum, l) => sum + l.length, 0)));
        await Promise.all(groups.map((group, rank) => group.allGather(locals[rank], outs[rank])));
        const concatenated = Float32Array.from(locals.flatMap((l) => [...l]));
        for (const out of outs) expect(out).toEqual(concatenated);
      }
    },
  );

  it('keeps back-to-back operations apart when one rank runs ahead', async () => {
    const [peers0, peers1] = inProcessMesh(2);
    const fast = new EndpointGroup(0, peers0);
    const slow = new EndpointGroup(1, peers1);
    const [a1, a2, b1, b2] = randomBuffers(4, 64);
    const fastOps = [fast.allReduceSum(a1.slice()), fast.allReduceSum(a2.slice())];
    const s1 = b1.slice();
    const s2 = b2.slice();
    await slow.allReduceSum(s1);
    await slow.allReduceSum(s2);
    await Promise.all(fastOps);
    expect(s1).toEqual(expectedSum([a1, b1]));
    expect(s2).toEqual(expectedSum([a2, b2]));
  });

  it('fails pending operations when a peer link closes', async () => {
    const [peers0, peers1] = inProcessMesh(2);
    const group = new EndpointGroup(0, peers0);
    const pending = group.allReduceSum(new Float32Array(8));
    peers1[0]!.close('peer crashed');
    await expect(pending).rejects.toThrow(/rank 1 lost/);
  });

  it('all-reduces across a loopback WebSocket, bit-identical on both ends', async () => {
    let acceptedLink: (link: Link) => void = () => {};
    const accepted = new Promise<Link>((resolve) => {
      acceptedLink = resolve;
    });
    const listener = await listenWebSocket({
      host: '127.0.0.1',
      port: 0,
      accept: INBOUND_TAGS.deviceToDevice,
      // A raw device-to-device link with no hello: only on loopback, in this test.
      isWithoutAuthentication: true,
      onConnection: (endpoint) => acceptedLink(endpoint as unknown as Link),
    });
    cleanups.push(() => listener.close());
    const client = (await connectWebSocket<DeviceToDevice, DeviceToDevice>(listener.url, {
      accept: INBOUND_TAGS.deviceToDevice,
    })) as unknown as Link;
    cleanups.push(() => client.close());
    const server = await accepted;
    const groups = [new EndpointGroup(0, [undefined, client]), new EndpointGroup(1, [server, undefined])];
    const inputs = randomBuffers(2, 256 * 1024);
    const buffers = inputs.map((b) => b.slice());
    await Promise.all(groups.map((group, rank) => group.allReduceSum(buffers[rank])));
    expect(buffers[0]).toEqual(expectedSum(inputs));
    expect(buffers[1]).toEqual(buffers[0]);
  });
});
