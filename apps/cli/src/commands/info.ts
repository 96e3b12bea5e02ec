/** `seesaw info`: this machine and the kernels the engine picks on it. */
import { cpus } from 'node:os';
import { matmulPaths, QUANT_KERNEL_PATHS, quantKernelPaths } from '@seesaw/kernels';

export async function infoCommand(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    const { UsageError } = await import('../args.ts');
    throw new UsageError(`info takes no arguments, got ${argv.join(' ')}`);
  }
  const { chosen, supported } = quantKernelPaths();
  const dense = matmulPaths();
  const forced = process.env.SEESAW_QUANT_KERNEL;
  const lines = [
    `cpu: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} logical cores)`,
    `f32/f16/bf16 matmul: ${dense.chosen} (paths this CPU runs: ${dense.supported.join(', ')}; ` +
      'force one with SEESAW_MATMUL_KERNEL; every path gives the same bits)',
    'attention, norms: AVX2 + FMA kernels',
    `int8 kernels for Q8_0/Q4_0 weights: ${chosen}` +
      (forced
        ? ` (SEESAW_QUANT_KERNEL=${forced}${forced === chosen ? '' : ': not available here, ignored'})`
        : ''),
    `int8 paths this CPU runs: ${supported.join(', ')} (of ${QUANT_KERNEL_PATHS.join(', ')}; force one with SEESAW_QUANT_KERNEL)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
