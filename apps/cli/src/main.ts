/**
 * Entry point of the `seesaw` command: picks the subcommand, maps usage mistakes to exit
 * status 2 and other failures to 1.
 */
import { UsageError } from './args.ts';
import { cliVersion, commandUsage, USAGE } from './usage.ts';

export { USAGE } from './usage.ts';

// Loaded on demand: `gen-model` and `help` must work without the native kernels built.
const COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  run: async () => (await import('./commands/run.ts')).runCommand,
  serve: async () => (await import('./commands/serve.ts')).serveCommand,
  bench: async () => (await import('./commands/bench.ts')).benchCommand,
  'gen-model': async () => (await import('./commands/gen-model.ts')).genModelCommand,
  quantize: async () => (await import('./commands/quantize.ts')).quantizeCommand,
  info: async () => (await import('./commands/info.ts')).infoCommand,
  coordinator: async () => (await import('./commands/coordinator.ts')).coordinatorCommand,
  worker: async () => (await import('./commands/worker.ts')).workerCommand,
  token: async () => (await import('./commands/token.ts')).tokenCommand,
  'cluster-run': async () => (await import('./commands/cluster-script.ts')).clusterRunCommand,
  plan: async () => (await import('./commands/plan.ts')).planCommand,
  simulate: async () => (await import('./commands/simulate.ts')).simulateCommand,
  profile: async () => (await import('./commands/profile.ts')).profileCommand,
  validate: async () => (await import('./commands/validate.ts')).validateCommand,
};

export async function main(argv: string[]): Promise<number> {
  // `pnpm seesaw -- run ...` passes the separator through.
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  if (args.length === 0) return (await import('./default-job.ts')).defaultJob();
  const [command, ...rest] = args;
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0];
    process.stdout.write(topic !== undefined && topic in COMMANDS ? commandUsage(topic) : USAGE);
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`seesaw ${cliVersion()}\n`);
    return 0;
  }
  const loadHandler = COMMANDS[command];
  if (loadHandler === undefined) {
    throw new UsageError(
      `unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')}, help)`,
    );
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandUsage(command));
    return 0;
  }
  const handler = await loadHandler();
  return handler(rest);
}

async function runMain(): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`seesaw: ${error.message}\nRun 'seesaw help' for usage.\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`seesaw: ${error instanceof Error ? error.message : String(error)}\n`);
      if (process.env.SEESAW_DEBUG) console.error(error);
      process.exitCode = 1;
    }
  }
}

// Run only as the program (bin/seesaw.js or tsx main.ts), not when a test imports USAGE/main.
const entry = process.argv[1] ?? '';
if (entry.endsWith('main.ts') || entry.endsWith('seesaw.js') || entry.endsWith('seesaw')) {
  await runMain();
}
