import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { LinkEnds } from '../cluster/layout-wiring.ts';
import { type ReplicaShape, wireAgentReplica } from './agent-replica-wiring.ts';

/**
 * One host's view of a replica: `here` its local devices. Records each call of `link` that spans
 * hosts as 'a-b#n' (n-th call for that pair), and gives fresh ports for the ends here.
 */
function wireHost(layouts: ReplicaShape[], here: Set<number>) {
  const calls = new Map<string, number>();
  const crossing: string[] = [];
  const ports: MessagePort[] = [];
  const link = (a: number, b: number): LinkEnds<MessagePort> => {
    const key = `${a}-${b}`;
    const n = calls.get(key) ?? 0;
    calls.set(key, n + 1);
    if (!here.has(a) && !here.has(b)) return [undefined, undefined];
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    if (here.has(a) !== here.has(b)) crossing.push(`${key}#${n}`);
    return [here.has(a) ? port1 : undefined, here.has(b) ? port2 : undefined];
  };
  let groups = 0;
  const createTpGroup = (size: number) => {
    groups++;
    return Array.from({ length: size }, (_, rank) => ({ size, rank }));
  };
  const wiring = wireAgentReplica(layouts, (local) => here.has(local), link, createTpGroup);
  const close = () => {
    for (const port of ports) port.close();
  };
  return { wiring, crossing, groups: () => groups, close };
}

describe('wireAgentReplica', () => {
  it('a P2 -> T2 replica over two hosts: every link crosses, both hosts name them alike', () => {
    const layouts = [
      { tp: 1, pp: 2 },
      { tp: 2, pp: 1 },
    ];
    const a = wireHost(layouts, new Set([0]));
    const b = wireHost(layouts, new Set([1]));
    try {
      // P2's pipeline link, T2's TP link, the weight mesh: three links between devices 0 and 1.
      expect(a.crossing).toEqual(['0-1#0', '0-1#1', '0-1#2']);
      expect(b.crossing).toEqual(a.crossing);
      const [device0, device1] = [a.wiring.links[0]!, b.wiring.links[1]!];
      expect(device0.next).toBeDefined();
      expect(device0.layouts?.[0]?.next).toBe(device0.next);
      expect(device1.layouts?.[0]?.previous).toBe(device1.previous);
      // T2 spans the hosts: peer ports for layout 1, no shared-memory group anywhere.
      expect(device0.layoutTpPeers?.[0]).toBeUndefined();
      expect(device0.layoutTpPeers?.[1]?.[0]).toBeUndefined();
      expect(device0.layoutTpPeers?.[1]?.[1]).toBeDefined();
      expect(device1.layoutTpPeers?.[1]?.[0]).toBeDefined();
      expect(a.groups() + b.groups()).toBe(0);
      expect(device0.reshardPeers?.map((port) => port !== undefined)).toEqual([false, true]);
      expect(device1.reshardPeers?.map((port) => port !== undefined)).toEqual([true, false]);
    } finally {
      a.close();
      b.close();
    }
  });

  it('a T2P2 -> T4 replica with one stage a host: shared memory for prefill, peer links for decode', () => {
    const layouts = [
      { tp: 2, pp: 2 },
      { tp: 4, pp: 1 },
    ];
    const a = wireHost(layouts, new Set([0, 1]));
    const b = wireHost(layouts, new Set([2, 3]));
    try {
      expect(b.crossing).toEqual(a.crossing);
      // Each host's prefill stage is one shared-memory group; the T4 group spans both hosts.
      expect(a.groups()).toBe(1);
      expect(a.wiring.groups[0]).toEqual([{ size: 2, rank: 0 }, undefined]);
      expect(b.wiring.groups[3]).toEqual([{ size: 2, rank: 1 }, undefined]);
      expect(a.wiring.links[0]!.tpPeers).toBeUndefined();
      expect(a.wiring.links[1]!.layoutTpPeers?.[1]?.map((port) => port !== undefined)).toEqual([
        true,
        false,
        true,
        true,
      ]);
      // Pipeline links of P2 join 0-2 and 1-3; decode has none (pp 1).
      expect(a.wiring.links[0]!.layouts?.[1]).toEqual({});
      expect(a.crossing).toContain('0-2#0');
      expect(a.crossing).toContain('1-3#0');
    } finally {
      a.close();
      b.close();
    }
  });

  it('a static replica: no mesh, no per-layout ports', () => {
    const a = wireHost([{ tp: 2, pp: 1 }], new Set([0, 1]));
    try {
      expect(a.crossing).toEqual([]);
      expect(a.wiring.links[0]).toEqual({});
      expect(a.wiring.groups[1]).toEqual([{ size: 2, rank: 1 }]);
    } finally {
      a.close();
    }
  });
});
