/**
 * The usage text, generated from the flag table (command-flags.ts): `seesaw <command> --help`
 * prints that command's description, flags and notes; `seesaw help` the command list, then
 * every command's part.
 */
import { readFileSync } from 'node:fs';
import { COMMANDS, commandDeclaration } from './command-flags.ts';
import { formatCommandBody } from './flag-table.ts';

const HEAD = `Usage: seesaw [command] [flags]

With no command, runs the built-in main job: generates (once) the small bf16 model under
.seesaw/models, runs 32 random prompts of 128 tokens (64 output tokens, greedy, 2 threads)
through 'seesaw run' into .seesaw/default-results.jsonl and prints the throughput.

`;

const NAME_COLUMN = 15;

/** Each command's line of the 'Commands:' list, in the order `seesaw help` shows them. */
export const COMMAND_USAGE: Readonly<Record<string, string>> = Object.fromEntries([
  ...COMMANDS.map((command) => [command.name, `  ${command.name.padEnd(NAME_COLUMN - 2)}${command.summary}`]),
  [
    'help',
    `  ${'help'.padEnd(NAME_COLUMN - 2)}Show this text ('seesaw help COMMAND' or 'seesaw COMMAND --help': one command).`,
  ],
]);

/** One command's usage: its description, its flags group by group and its notes. */
export function commandUsage(command: string): string {
  const declaration = commandDeclaration(command);
  return [
    `Usage: seesaw ${command} [flags]`,
    '',
    declaration.summary,
    '',
    formatCommandBody(declaration),
    '',
  ].join('\n');
}

/** Every command's part of the whole page: `seesaw NAME [flags]` over its description and flags. */
function commandSections(): string[] {
  return COMMANDS.map((command) => [command, formatCommandBody(command)] as const)
    .filter(([, body]) => body !== '')
    .map(([command, body]) => `seesaw ${command.name} [flags]\n${body}\n`);
}

/** The whole page: what `seesaw help` and `seesaw --help` print. */
export const USAGE = `${HEAD}Commands:\n${Object.values(COMMAND_USAGE).join('\n')}\n\n${commandSections().join('\n')}`;

/** The CLI's version, from its package.json. */
export function cliVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return String(packageJson.version);
}
