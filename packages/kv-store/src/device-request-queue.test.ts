import { describe, expect, it } from 'vitest';
import { DeviceRequestQueue } from './device-request-queue.ts';

/** A queue whose turns of the event loop the test takes by hand, and the order requests ran in. */
function queueUnderTest() {
  const turns: Array<() => void> = [];
  const queue = new DeviceRequestQueue<string>((callback) => turns.push(callback));
  const ran: string[] = [];
  const push = (link: string, name: string, isBackground = false) =>
    queue.push(link, isBackground, () => ran.push(name));
  const turn = () => {
    const callbacks = turns.splice(0);
    for (const callback of callbacks) callback();
    return callbacks.length;
  };
  return { queue, ran, push, turn };
}

describe('DeviceRequestQueue', () => {
  it('runs nothing until the event loop turns, then each link in arrival order', () => {
    const { ran, push, turn } = queueUnderTest();
    push('a', 'a1');
    push('a', 'a2', true);
    push('a', 'a3');
    expect(ran).toEqual([]);
    while (turn() > 0);
    expect(ran).toEqual(['a1', 'a2', 'a3']);
  });

  it("serves another link's foreground requests before a link's prefetches queued earlier", () => {
    const { ran, push, turn } = queueUnderTest();
    for (let i = 1; i <= 4; i++) push('tp0', `prefetch ${i}`, true);
    push('tp1', 'swap-in 1');
    push('tp1', 'swap-in 2');
    while (turn() > 0);
    expect(ran).toEqual(['swap-in 1', 'swap-in 2', 'prefetch 1', 'prefetch 2', 'prefetch 3', 'prefetch 4']);
  });

  it('never lets a foreground request overtake an earlier prefetch on its own link', () => {
    const { ran, push, turn } = queueUnderTest();
    push('tp0', 'prefetch', true);
    push('tp0', 'swap-out');
    push('tp1', 'prefetch b', true);
    while (turn() > 0);
    // tp0's head is a prefetch, so both links are background and go in turn: tp0 first.
    expect(ran).toEqual(['prefetch', 'swap-out', 'prefetch b']);
  });

  it('takes links in turn within a class, so none starves', () => {
    const { ran, push, turn } = queueUnderTest();
    for (const name of ['a1', 'a2', 'a3']) push('a', name);
    for (const name of ['b1', 'b2']) push('b', name);
    for (const name of ['c1', 'c2', 'c3']) push('c', name, true);
    while (turn() > 0);
    expect(ran).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'c1', 'c2', 'c3']);
  });

  it('drops a closed link and runs the rest at once on runAll', () => {
    const { queue, ran, push } = queueUnderTest();
    push('gone', 'lost');
    push('tp0', 'prefetch', true);
    push('tp1', 'write-back');
    queue.drop('gone');
    expect(queue.numQueued).toBe(2);
    queue.runAll();
    expect(ran).toEqual(['write-back', 'prefetch']);
    expect(queue.numQueued).toBe(0);
  });

  it('yields between slices: a request queued during a long slice can still go first', () => {
    const turns: Array<() => void> = [];
    const queue = new DeviceRequestQueue<string>((callback) => turns.push(callback));
    const ran: string[] = [];
    const busy = (name: string) => () => {
      const end = performance.now() + 2; // longer than a slice
      while (performance.now() < end);
      ran.push(name);
    };
    queue.push('tp0', true, busy('prefetch 1'));
    queue.push('tp0', true, busy('prefetch 2'));
    turns.shift()!();
    expect(ran).toEqual(['prefetch 1']);
    queue.push('tp1', false, busy('swap-in'));
    while (turns.length > 0) turns.shift()!();
    expect(ran).toEqual(['prefetch 1', 'swap-in', 'prefetch 2']);
  });
});
