import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from './main.ts';
import { COMMAND_USAGE, commandUsage, USAGE } from './usage.ts';

/** What main() writes to stdout for `argv`, with its exit status. */
async function printed(argv: string[]): Promise<{ status: number; text: string }> {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  const status = await main(argv);
  vi.restoreAllMocks();
  return { status, text: chunks.join('') };
}

describe('usage per command and --version', () => {
  afterEach(() => vi.restoreAllMocks());

  it('seesaw <command> --help shows that command only, with the notes that apply to it', async () => {
    // 'help --help' is the whole page (see below); every other command has its own.
    const names = Object.keys(COMMAND_USAGE).filter((name) => name !== 'help');
    expect(names).toEqual(
      expect.arrayContaining(['run', 'bench', 'gen-model', 'plan', 'simulate', 'profile']),
    );
    for (const name of names) {
      const { status, text } = await printed([name, '--help']);
      expect(status).toBe(0);
      expect(text).toBe(commandUsage(name));
      expect(text.startsWith(`Usage: seesaw ${name} [flags]\n`)).toBe(true);
      for (const other of names.filter((n) => n !== name)) {
        expect(text).not.toMatch(new RegExp(`^${other}\\s{2,}`, 'm'));
      }
      expect(text.length).toBeLessThan(USAGE.length);
    }
    const run = commandUsage('run');
    expect(run).toContain('--prefill X --decode Y');
    expect(run).not.toContain('Compare (bench)');
    expect(commandUsage('bench')).toContain('Compare (bench)');
    expect(commandUsage('gen-model')).not.toContain('--prefill');
    expect((await printed(['help', 'bench'])).text).toBe(commandUsage('bench'));
  });

  it('seesaw help and --help print the whole page, listing every command', async () => {
    const { status, text } = await printed(['--help']);
    expect(status).toBe(0);
    expect(text).toBe(USAGE);
    for (const name of Object.keys(COMMAND_USAGE)) expect(text).toMatch(new RegExp(`^  ${name}\\s`, 'm'));
  });

  it('seesaw --version prints the CLI package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    const { status, text } = await printed(['--version']);
    expect(status).toBe(0);
    expect(text).toBe(`seesaw ${version}\n`);
  });
});
