import { MessageChannel } from 'node:worker_threads';
import { type DeviceToDevice, INBOUND_TAGS, type Tensor, WorkerPortEndpoint } from '@seesaw/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentPeerLinks, relayPortToSocket } from './peer-links.ts';

const TOKEN = 'peer-token';
const opened: AgentPeerLinks[] = [];

async function listen(token = TOKEN): Promise<AgentPeerLinks> {
  const links = await AgentPeerLinks.listen({
    host: '127.0.0.1',
    advertiseHost: '127.0.0.1',
    port: 0,
    token,
    log: () => {},
  });
  opened.push(links);
  return links;
}

function deviceEnd(port: MessageChannel['port1'], name: string) {
  return new WorkerPortEndpoint<DeviceToDevice, DeviceToDevice>(port, name, {
    accept: INBOUND_TAGS.deviceToDevice,
  });
}

afterEach(async () => {
  for (const links of opened.splice(0)) await links.close();
});

describe('AgentPeerLinks', () => {
  it('pairs a dial that comes before the expect, and relays device frames both ways intact', async () => {
    const [a, b] = [await listen(), await listen()];
    const dialed = await a.dial(b.url, 7, 0, 1);
    // The accepting side learns of the link only after the dial (its spawnReplica came later).
    await new Promise((resolve) => setTimeout(resolve, 50));
    const accepted = await b.expect(7, 0, 1, 5000);
    const [left, right] = [new MessageChannel(), new MessageChannel()];
    relayPortToSocket(left.port2, dialed, 'a side');
    relayPortToSocket(right.port2, accepted, 'b side');
    const [device0, device1] = [deviceEnd(left.port1, 'device 0'), deviceEnd(right.port1, 'device 1')];

    const data = Float32Array.from({ length: 96 }, () => Math.random() * 2 - 1);
    const got = new Promise<[DeviceToDevice, Tensor[]]>((resolve) =>
      device1.onMessage((message, tensors) =>
        resolve([message, tensors.map((t) => ({ ...t, data: t.data.slice() }))]),
      ),
    );
    device0.post({ tag: 'activations', stepId: 3, microBatch: 0, fromStage: 0, numTokens: 3 }, [
      { dtype: 'f32', shape: [3, 32], data },
    ]);
    const [message, tensors] = await got;
    expect(message).toEqual({ tag: 'activations', stepId: 3, microBatch: 0, fromStage: 0, numTokens: 3 });
    expect(tensors[0]!.shape).toEqual([3, 32]);
    expect(tensors[0]!.data).toEqual(data);

    const back = new Promise<DeviceToDevice>((resolve) => device0.onMessage((m) => resolve(m)));
    device1.post({ tag: 'heartbeat', seq: 1, sentAtMs: 5 });
    expect(await back).toEqual({ tag: 'heartbeat', seq: 1, sentAtMs: 5 });

    // Closing one device's port ends the link on the other host too.
    const closed = new Promise<string>((resolve) => device1.onClose(resolve));
    device0.close('done');
    expect(await closed).toMatch(/closed/);
  });

  it('refuses a peer without the cluster token, and times out a link nobody dials', async () => {
    const [good, intruder] = [await listen(), await listen('wrong')];
    await expect(intruder.dial(good.url, 1, 0, 1)).rejects.toThrow(/token/);
    await expect(good.expect(1, 0, 1, 100)).rejects.toThrow(
      /device 0 did not open link 0 to device 1 in 100 ms/,
    );
  });
});
