/**
 * `pnpm bench:abuse`: what unauthenticated and malformed traffic costs a coordinator daemon and
 * a host agent's peer-link listener. Both run as their own processes on loopback; this process
 * is the attacker. Stops by itself (each phase has a deadline) and prints:
 * - peak RSS growth (VmHWM minus the settled RSS) of the coordinator and of the agent listener
 *   while 100 unauthenticated connections each try to send one 128 MiB frame (target < 100 MiB);
 * - 1e5 fuzzed frames (mutated valid frames, random bytes, truncations) sent to the coordinator,
 *   before and after authentication, and whether either process crashed (target 0).
 * Usage: pnpm bench:abuse [--senders 100] [--frame-mib 128] [--fuzz-frames 100000] [--seed S]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  connectAndHello,
  connectWebSocket,
  encodeFrame,
  type Message,
  type WebSocketEndpoint,
} from '@seesaw/protocol';
import { AgentPeerLinks, CoordinatorDaemon } from '../src/index.ts';

const TOKEN = 'abuse-bench-token-0123456789abcdef0123456789';

/** Child mode: serve until killed, print the URL on stdout. */
async function serve(role: string): Promise<void> {
  const log = () => {};
  if (role === 'coordinator') {
    const daemon = await CoordinatorDaemon.start({ port: 0, token: TOKEN, log });
    process.stdout.write(`${daemon.url}\n`);
  } else {
    const links = await AgentPeerLinks.listen({
      host: '127.0.0.1',
      advertiseHost: '127.0.0.1',
      port: 0,
      token: TOKEN,
      log,
    });
    process.stdout.write(`${links.url}\n`);
  }
  setInterval(() => {}, 1 << 30);
}

function startServer(role: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, '--serve', role], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve({ child, url: text.trim() });
    });
    child.once('exit', (code) => reject(new Error(`${role} exited (${code}) before listening`)));
  });
}

function memoryKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} for ${pid}`);
  return Number(match[1]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 100 unauthenticated senders, each one 128 MiB frame (one shared buffer, so this side stays small). */
async function flood(url: string, numSenders: number, frame: Uint8Array): Promise<number> {
  let numClosed = 0;
  await Promise.all(
    Array.from({ length: numSenders }, async () => {
      let link: WebSocketEndpoint<Message, Message>;
      try {
        link = await connectWebSocket<Message, Message>(url, { log: () => {}, timeoutMs: 5000 });
      } catch {
        numClosed++; // refused at once (over the cap)
        return;
      }
      const closed = new Promise<void>((resolve) => link.onClose(() => resolve()));
      link.sendFrame(frame);
      await Promise.race([closed, sleep(15_000)]);
      if (link.isClosed) numClosed++;
      link.close();
    }),
  );
  return numClosed;
}

function fuzzedFrame(random: () => number, valid: Uint8Array[]): Uint8Array {
  const base = valid[Math.floor(random() * valid.length)]!;
  const kind = random();
  if (kind < 0.3) return crypto.getRandomValues(new Uint8Array(1 + Math.floor(random() * 512)));
  if (kind < 0.5) return base.subarray(0, Math.floor(random() * base.length));
  const copy = base.slice();
  for (let i = 0, n = 1 + Math.floor(random() * 4); i < n; i++)
    copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
  return copy;
}

/** Sends `count` fuzzed frames over authenticated links (reconnecting whenever one is closed). */
async function fuzz(url: string, count: number, seed: number): Promise<number> {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const valid = [
    encodeFrame({ tag: 'heartbeat', sentAt: 1 } as unknown as Message, []),
    encodeFrame({ tag: 'agentJoin', hostName: 'h', numDevices: 1 } as unknown as Message, []),
    encodeFrame({ tag: 'hello', role: 'device', name: 'x', token: 'y', protocolVersion: 1 } as Message, []),
  ];
  let sent = 0;
  let numLinks = 0;
  while (sent < count) {
    const link = await connectWebSocket<Message, Message>(url, { log: () => {} });
    numLinks++;
    // Every 10th link fuzzes before authenticating (one frame, then the server closes it).
    if (numLinks % 10 !== 0) await connectAndHello(link, { role: 'device', name: 'fuzzer', token: TOKEN });
    while (!link.isClosed && sent < count) {
      link.sendFrame(fuzzedFrame(random, valid));
      sent++;
      if (sent % 500 === 0) await link.waitForDrain(1 << 20);
      if (sent % 2000 === 0) await sleep(0);
    }
    link.close();
  }
  return numLinks;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      senders: { type: 'string', default: '100' },
      'frame-mib': { type: 'string', default: '128' },
      'fuzz-frames': { type: 'string', default: '100000' },
      seed: { type: 'string', default: String(Date.now() % 1e9) },
    },
  });
  if (values.serve) return serve(values.serve);
  const numSenders = Number(values.senders);
  const frame = new Uint8Array(Number(values['frame-mib']) * 1024 * 1024);
  console.log(`seesaw abuse bench (loopback; seed ${values.seed}; shared machine: figures are indicative)`);
  for (const role of ['coordinator', 'agent']) {
    const { child, url } = await startServer(role);
    await sleep(500);
    const settledKiB = memoryKiB(child.pid!, 'VmRSS');
    const numClosed = await flood(url, numSenders, frame);
    await sleep(500);
    const peakKiB = memoryKiB(child.pid!, 'VmHWM');
    const growthMiB = (peakKiB - settledKiB) / 1024;
    console.log(
      `${role}: ${numSenders} unauthenticated senders x ${values['frame-mib']} MiB: RSS ${(settledKiB / 1024).toFixed(0)} MiB ` +
        `-> peak ${(peakKiB / 1024).toFixed(0)} MiB (growth ${growthMiB.toFixed(1)} MiB, target < 100); ` +
        `${numClosed}/${numSenders} connections closed by the server`,
    );
    if (role === 'coordinator') {
      const count = Number(values['fuzz-frames']);
      const numLinks = await fuzz(url, count, Number(values.seed));
      await sleep(500);
      const health = await fetch(`${url.replace('ws://', 'http://')}/healthz`).then(
        (r) => r.status,
        () => 0,
      );
      const isAlive = child.exitCode === null && health === 200;
      console.log(
        `coordinator: ${count} fuzzed frames over ${numLinks} links: ${isAlive ? 0 : 1} crashes ` +
          `(healthz ${health}; peak RSS ${(memoryKiB(child.pid!, 'VmHWM') / 1024).toFixed(0)} MiB)`,
      );
    }
    child.kill('SIGTERM');
  }
}

await main();
