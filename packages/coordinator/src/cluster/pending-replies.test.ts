import { describe, expect, it } from 'vitest';
import { PendingReplies } from './pending-replies.ts';

describe('PendingReplies', () => {
  it('hands each answer to the request with its id, once', async () => {
    const replies = new PendingReplies<string>();
    const first = replies.expect(1);
    const second = replies.expect(2);
    expect(replies.has(1)).toBe(true);
    expect(replies.ids()).toEqual([1, 2]);
    expect(replies.settle(2, 'b')).toBe(true);
    expect(replies.settle(1, 'a')).toBe(true);
    await expect(first).resolves.toBe('a');
    await expect(second).resolves.toBe('b');
    // Settled requests are forgotten: a second answer finds nobody.
    expect(replies.has(1)).toBe(false);
    expect(replies.settle(1, 'again')).toBe(false);
  });

  it('rejects one request, or all of them on a failure', async () => {
    const replies = new PendingReplies<number>();
    const timedOut = replies.expect(7);
    replies.reject(7, new Error('no answer'));
    await expect(timedOut).rejects.toThrow('no answer');
    replies.reject(7, new Error('nobody waits')); // nothing left to reject
    const a = replies.expect(1);
    const b = replies.expect(2);
    replies.rejectAll(new Error('device lost'));
    await expect(a).rejects.toThrow('device lost');
    await expect(b).rejects.toThrow('device lost');
    expect(replies.settle(1, 5)).toBe(false);
  });
});
