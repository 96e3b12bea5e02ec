/**
 * Where each DP replica of a multi-host job runs. A replica (tp * pp devices, its TP groups in
 * shared memory and PP links as MessagePorts) stays inside one host; replicas go one at a time
 * to the host with the most free devices (ties: first by name), which spreads DP over hosts.
 */

export interface HostCapacity {
  name: string;
  freeDevices: number;
}

/** Host name per dpRank; throws with the shortfall when the replicas do not fit. */
export function placeReplicas(
  hosts: readonly HostCapacity[],
  dp: number,
  devicesPerReplica: number,
): string[] {
  const free = hosts.map((host) => ({ ...host }));
  const placement: string[] = [];
  for (let dpRank = 0; dpRank < dp; dpRank++) {
    let best: HostCapacity | undefined;
    for (const host of free) {
      if (host.freeDevices < devicesPerReplica) continue;
      if (!best || host.freeDevices > best.freeDevices) best = host;
    }
    if (!best) {
      const offer = hosts.map((h) => `${h.name} (${h.freeDevices} free)`).join(', ') || 'no hosts';
      throw new Error(
        `cannot place ${dp} replicas of ${devicesPerReplica} devices each (a replica stays on one host): ${offer}`,
      );
    }
    best.freeDevices -= devicesPerReplica;
    placement.push(best.name);
  }
  return placement;
}
