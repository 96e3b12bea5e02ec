/**
 * The wait a re-plan makes for the registry to catch up with the devices a job just lost, so
 * that it counts their hosts as down before it places devices anew.
 */
import type { HostRegistry } from './host-registry.ts';
import { hostOfDevice } from './remote-replicas.ts';

/**
 * How long a re-plan waits for the registry to drop the hosts of the devices just lost: a killed
 * agent's relayed device links may close a moment before its own link does, and a re-plan that
 * counted that host as up would place devices on it.
 */
const HOST_LOSS_GRACE_MS = 1_000;

/**
 * Waits (up to HOST_LOSS_GRACE_MS) until each host of a lost device is known lost or dropped:
 * a device worker that died alone leaves its host up, and the wait ends at the grace.
 */
export async function awaitHostLosses(
  registry: HostRegistry,
  lostHosts: ReadonlySet<string>,
  lostDevices: readonly string[],
): Promise<void> {
  const hosts = new Set(lostDevices.map(hostOfDevice).filter((h): h is string => h !== undefined));
  const isSettled = () => [...hosts].every((host) => lostHosts.has(host) || registry.get(host) === undefined);
  if (isSettled()) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, HOST_LOSS_GRACE_MS);
    const off = registry.onLoss(() => {
      if (isSettled()) done();
    });
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}
