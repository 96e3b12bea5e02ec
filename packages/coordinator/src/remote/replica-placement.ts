/**
 * Where each DP replica of a multi-host job runs. A replica (tp * pp devices, its TP groups in
 * shared memory and PP links as MessagePorts) stays inside one host when any host can hold it;
 * replicas go one at a time to the host with the most free devices (ties: first by name), which
 * spreads DP over hosts. placeDevices may also split a replica over hosts (its cross-host links
 * then go agent to agent, see peer-links.ts).
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

/**
 * Host name per global device (device = dpRank * devicesPerReplica + local). Replicas that fit
 * one host go where placeReplicas puts them; with `mayCrossHosts` (every host accepts peer
 * links) a replica that fits no single host takes its devices from the hosts with the most
 * free devices, most first, each host's share contiguous (whole TP groups stay together when
 * the shares allow, since local = ppStage * tp + tpRank). Throws placeReplicas' error otherwise.
 */
export function placeDevices(
  hosts: readonly HostCapacity[],
  dp: number,
  devicesPerReplica: number,
  mayCrossHosts: boolean,
): string[] {
  try {
    return placeReplicas(hosts, dp, devicesPerReplica).flatMap((name) =>
      new Array<string>(devicesPerReplica).fill(name),
    );
  } catch (error) {
    const totalFree = hosts.reduce((sum, host) => sum + host.freeDevices, 0);
    if (!mayCrossHosts || totalFree < dp * devicesPerReplica) throw error;
  }
  const free = hosts.map((host) => ({ ...host }));
  const devices: string[] = [];
  for (let dpRank = 0; dpRank < dp; dpRank++) {
    const whole = mostFree(free);
    if (whole && whole.freeDevices >= devicesPerReplica) {
      whole.freeDevices -= devicesPerReplica;
      devices.push(...new Array<string>(devicesPerReplica).fill(whole.name));
      continue;
    }
    for (let left = devicesPerReplica; left > 0; ) {
      const host = mostFree(free)!;
      const share = Math.min(left, host.freeDevices);
      host.freeDevices -= share;
      left -= share;
      devices.push(...new Array<string>(share).fill(host.name));
    }
  }
  return devices;
}

function mostFree(hosts: HostCapacity[]): HostCapacity | undefined {
  let best: HostCapacity | undefined;
  for (const host of hosts) if (!best || host.freeDevices > best.freeDevices) best = host;
  return best;
}
