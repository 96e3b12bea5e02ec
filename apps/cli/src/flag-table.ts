/**
 * The CLI's flags, declared once: each flag's name, type, value name, help line and default
 * live in one declaration, grouped the way commands share them (engine flags, cluster flags,
 * TLS flags ...). A command is its summary, its groups and its prose; from that one table come
 * the node:util parseArgs spec each command parses with and the text `seesaw <command> --help`
 * prints, so a flag cannot be parsed without being documented, or documented without existing.
 */
import type { FlagSpec } from './args.ts';

export interface FlagDeclaration {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  /** How the value is written in help (DIR, N, SIZE, auto|p2p|host); absent for a boolean. */
  readonly value?: string;
  readonly help: string;
  /** The default as help shows it; the reader applies the same constant when the flag is absent. */
  readonly default?: string | number;
}

/** Flags several commands take together, shown under one heading. */
export interface FlagGroup {
  readonly title: string;
  readonly flags: readonly FlagDeclaration[];
}

export interface CommandDeclaration {
  readonly name: string;
  /** One line for the command list of `seesaw help`. */
  readonly summary: string;
  /** What the command does and how it is called, beyond its flags; a few lines at most. */
  readonly description?: string;
  readonly groups: readonly FlagGroup[];
  /** Paragraphs about how flags combine, printed after the flags. */
  readonly notes?: readonly string[];
}

export function stringFlag(
  name: string,
  value: string,
  help: string,
  defaultValue?: string | number,
): FlagDeclaration {
  return defaultValue === undefined
    ? { name, type: 'string', value, help }
    : { name, type: 'string', value, help, default: defaultValue };
}

export function booleanFlag(name: string, help: string): FlagDeclaration {
  return { name, type: 'boolean', help };
}

/** Every flag of `command`, checked: one name twice in a command is a mistake in the table. */
export function flagsOf(command: CommandDeclaration): FlagDeclaration[] {
  const flags = command.groups.flatMap((group) => group.flags);
  const seen = new Set<string>();
  for (const flag of flags) {
    if (seen.has(flag.name)) throw new Error(`flag --${flag.name} is declared twice for '${command.name}'`);
    seen.add(flag.name);
  }
  return flags;
}

/** The parseArgs options of `command`. */
export function parseSpecOf(command: CommandDeclaration): FlagSpec {
  return Object.fromEntries(flagsOf(command).map((flag) => [flag.name, { type: flag.type }]));
}

/** The defaults of `command`'s flags that have one, by flag name. */
export function defaultsOf(command: CommandDeclaration): Record<string, string | number> {
  const defaults: Record<string, string | number> = {};
  for (const flag of flagsOf(command)) if (flag.default !== undefined) defaults[flag.name] = flag.default;
  return defaults;
}

const HELP_COLUMN = 32;

function flagLine(flag: FlagDeclaration): string {
  const left = `  --${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`;
  const help = flag.default === undefined ? flag.help : `${flag.help} (default ${flag.default})`;
  return left.length + 2 <= HELP_COLUMN
    ? `${left.padEnd(HELP_COLUMN)}${help}`
    : `${left}\n${' '.repeat(HELP_COLUMN)}${help}`;
}

/** `command`'s description, then its flags group by group, then its notes. */
export function formatCommandBody(command: CommandDeclaration): string {
  flagsOf(command);
  const parts: string[] = [];
  if (command.description !== undefined) parts.push(command.description);
  for (const group of command.groups) {
    if (group.flags.length === 0) continue;
    parts.push([`${group.title}:`, ...group.flags.map(flagLine)].join('\n'));
  }
  parts.push(...(command.notes ?? []));
  return parts.join('\n\n');
}
