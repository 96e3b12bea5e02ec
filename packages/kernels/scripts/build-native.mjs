// Builds the native kernel addon with node-gyp against the headers of the Node.js that
// runs this script (no header download: the machines have no general network access).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodePrefix = dirname(dirname(process.execPath));
const headerDir = join(nodePrefix, 'include', 'node');
if (!existsSync(join(headerDir, 'node_api.h'))) {
  console.error(
    `seesaw kernels: Node headers not found in ${headerDir}; install the Node.js headers package`,
  );
  process.exit(1);
}
const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const jobs = process.env.JOBS ?? '2';
const result = spawnSync(
  process.execPath,
  [nodeGyp, 'rebuild', `--nodedir=${nodePrefix}`, `--jobs=${jobs}`],
  {
    cwd: packageDir,
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
