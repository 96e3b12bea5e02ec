import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.ts';
import { readDaemonServiceFlags } from './daemon-service.ts';

describe('coordinator --http flags', () => {
  it('without --http there is no service, and its flags are refused by name', () => {
    expect(readDaemonServiceFlags({})).toBeNull();
    expect(() => readDaemonServiceFlags({ 'state-dir': '/tmp/x' })).toThrow(UsageError);
    expect(() => readDaemonServiceFlags({ model: 'm' })).toThrow(/--model needs --http/);
  });

  it('with --http: an address, a layout and a state dir are checked', () => {
    expect(() => readDaemonServiceFlags({ http: 'nowhere' })).toThrow(/--http must be HOST:PORT/);
    expect(() => readDaemonServiceFlags({ http: '127.0.0.1:0', config: 'Q3' })).toThrow(/--config/);
    expect(() => readDaemonServiceFlags({ http: '127.0.0.1:0' })).toThrow(/--state-dir/);
  });
});
