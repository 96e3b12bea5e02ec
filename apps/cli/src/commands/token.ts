/** `seesaw token --out F`: writes a new random cluster token to F with mode 0600. */
import { parseFlags, requiredString } from '../args.ts';
import { commandFlagSpec } from '../command-flags.ts';
import { writeNewTokenFile } from '../token-file.ts';

export const TOKEN_FLAGS = commandFlagSpec('token');

export async function tokenCommand(argv: string[]): Promise<number> {
  const values = parseFlags('token', argv, TOKEN_FLAGS);
  const out = requiredString(values, 'out');
  writeNewTokenFile(out);
  process.stdout.write(`wrote a new cluster token to ${out} (mode 0600)\n`);
  return 0;
}
