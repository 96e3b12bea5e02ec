/**
 * `seesaw coordinator --http` with `--tls-cert/--tls-key`: the service API is HTTPS with the
 * same certificate (its own job link to the daemon wss://), every actor its own process on
 * loopback. The real openai client, trusting the test CA through NODE_EXTRA_CA_CERTS in a child
 * process, gets the completion `seesaw run` writes for the same line, and streamed, token by
 * token through the job's progress messages, the same text; plain http:// gets a 400 saying so.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choicesById,
  coordinatorUrl,
  ProcessGroup,
  REPO_ROOT,
  runToEnd,
  type Started,
  waitFor,
} from './remote-cluster-support.ts';
import { TestCertificates } from './security/tls-test-support.ts';

const BODY = {
  model: 'tiny',
  prompt: 'Over TLS',
  max_tokens: 16,
  temperature: 0.7,
  seed: 11,
  ignore_eos: true,
  return_token_ids: true,
};

/** The openai client in a child process that trusts `caPath`; prints what it got as JSON. */
const CLIENT_SCRIPT = `
import OpenAI from 'openai';
const client = new OpenAI({ apiKey: process.env.API_KEY, baseURL: process.env.BASE_URL, maxRetries: 0 });
const body = JSON.parse(process.env.BODY);
const completion = await client.completions.create(body);
const pieces = [];
for await (const chunk of await client.completions.create({ ...body, stream: true })) {
  for (const choice of chunk.choices) pieces.push(choice.text);
}
console.log(JSON.stringify({ choices: completion.choices, pieces }));
`;

function runClient(
  caPath: string,
  apiKey: string,
  baseUrl: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT_SCRIPT], {
    cwd: join(REPO_ROOT, 'test'),
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: caPath,
      API_KEY: apiKey,
      BASE_URL: baseUrl,
      BODY: JSON.stringify(BODY),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('seesaw coordinator --http with --tls-cert: the service over HTTPS', () => {
  const group = new ProcessGroup();
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-service-tls-'));
  const certs = new TestCertificates(dir);
  const modelDir = join(dir, 'tiny');
  const keyFile = join(dir, 'api-key');
  let caPath = '';
  let coordinator: Started;
  let baseUrl = '';

  beforeAll(async () => {
    const generated = await runToEnd(group, ['gen-model', '--shape', 'tiny', '--out', modelDir]);
    expect(generated.code, generated.stderr).toBe(0);
    const tokenFile = join(dir, 'cluster-token');
    writeFileSync(tokenFile, 'tls-service-cluster-secret-padded-to-32-bytes\n', { mode: 0o600 });
    writeFileSync(keyFile, 'tls-service-api-key-padded-to-at-least-32-bytes\n', { mode: 0o600 });
    caPath = certs.makeCa('service');
    const { cert, key } = certs.makeServerCert('service');
    coordinator = group.start([
      ...[
        'coordinator',
        '--listen',
        '127.0.0.1:0',
        '--token-file',
        tokenFile,
        '--tls-cert',
        cert,
        '--tls-key',
        key,
      ],
      ...['--http', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--api-key-file', keyFile],
      ...['--model', modelDir, '--config', 'D1', '--threads', '1', '--device-memory', '64MiB'],
    ]);
    const url = await coordinatorUrl(coordinator);
    expect(url).toMatch(/^wss:\/\//);
    group.start([
      'worker',
      '--connect',
      url,
      '--devices',
      '1',
      '--token-file',
      tokenFile,
      '--tls-ca',
      caPath,
      '--name',
      'solo',
    ]);
    baseUrl = await waitFor('the service to listen', 30_000, () => {
      if (coordinator.child.exitCode !== null) throw new Error(`coordinator exited: ${coordinator.stderr()}`);
      return /service listening on (\S+)/.exec(coordinator.stdout())?.[1];
    });
  }, 120_000);

  afterAll(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the openai client over HTTPS with the completion of seesaw run, streamed token by token', async () => {
    expect(baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1$/);
    const input = join(dir, 'line.jsonl');
    const output = join(dir, 'local.jsonl');
    writeFileSync(
      input,
      `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/completions', body: BODY })}\n`,
    );
    const local = await runToEnd(group, [
      'run',
      '--model',
      modelDir,
      '--input',
      input,
      '--output',
      output,
      '--threads',
      '1',
    ]);
    expect(local.code, local.stderr).toBe(0);
    const expected = choicesById(output).get('a') as { text: string; token_ids: number[] }[];

    const result = await runClient(caPath, readFileSync(keyFile, 'utf8').trim(), baseUrl);
    expect(result.code, `${result.stderr}\n${coordinator.stderr()}`).toBe(0);
    const answer = JSON.parse(result.stdout) as { choices: typeof expected; pieces: string[] };
    expect(answer.choices[0].token_ids).toEqual(expected[0].token_ids);
    expect(answer.choices[0].text).toBe(expected[0].text);
    expect(answer.pieces.join('')).toBe(expected[0].text);
    expect(answer.pieces.filter((piece) => piece !== '').length).toBeGreaterThan(2);
  }, 120_000);

  it('refuses plain http:// on the HTTPS port, and a client that does not trust the CA', async () => {
    const apiKey = readFileSync(keyFile, 'utf8').trim();
    const plain = new OpenAI({ apiKey, baseURL: baseUrl.replace('https://', 'http://'), maxRetries: 0 });
    await expect(plain.models.list()).rejects.toMatchObject({ status: 400 });
    const answer = await fetch(`${baseUrl.replace('https://', 'http://')}/models`);
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/this port serves HTTPS: use https:\/\//);
    const untrusting = new OpenAI({ apiKey, baseURL: baseUrl, maxRetries: 0 });
    await expect(untrusting.models.list()).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
  }, 60_000);
});
