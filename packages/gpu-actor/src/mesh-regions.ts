/**
 * The shared buffers a device has announced on each of its weight-mesh links (the weight arena's
 * chunks), under ids it gives them: a piece lying in one then crosses the link as a descriptor
 * (region, offset) instead of its bytes. Each buffer is announced once per link, before the first
 * frame that refers to it (a port delivers in order).
 *
 * A link's two ends share one id space (an endpoint registers the ids it announces and those it
 * is told of in one table, and an id announced again replaces its buffer), so each device's ids
 * carry its index in the replica: the peer's announcements never replace this device's regions.
 */
import { SharedRegion } from '@seesaw/protocol';
import type { LinkEndpoint } from './device-worker-links.ts';

/** Regions a device may announce (its ids are device * REGIONS_PER_DEVICE + 1, + 2, ...). */
const REGIONS_PER_DEVICE = 1 << 16;

export class MeshRegions {
  private readonly ids = new Map<SharedArrayBuffer, number>();
  private readonly announced = new Map<LinkEndpoint, Set<number>>();

  /** `device`: this device's index in its replica's mesh. */
  constructor(private readonly device: number) {
    if (!Number.isInteger(device) || device < 0 || device >= 0xffff)
      throw new RangeError(`mesh regions: device index ${device} out of range`);
  }

  /** Makes `buffer` a region of `link` (announcing it to the peer the first time). */
  share(link: LinkEndpoint, buffer: SharedArrayBuffer): void {
    let id = this.ids.get(buffer);
    if (id === undefined) {
      if (this.ids.size + 1 >= REGIONS_PER_DEVICE)
        throw new RangeError(`mesh regions: device ${this.device} has announced ${this.ids.size} buffers`);
      id = this.device * REGIONS_PER_DEVICE + this.ids.size + 1;
      this.ids.set(buffer, id);
    }
    let onLink = this.announced.get(link);
    if (!onLink) {
      onLink = new Set();
      this.announced.set(link, onLink);
    }
    if (onLink.has(id)) return;
    link.shareRegion(new SharedRegion(id, buffer));
    onLink.add(id);
  }
}
