import type { ModelConfig, ParallelConfig } from '@seesaw/model';
import type { StepBatch, StepResult } from '@seesaw/protocol';
import { CpuDevice, type CpuDeviceOptions, type StageOutput } from './cpu-device.ts';
import { InProcessGroup } from './in-process-group.ts';

export interface InProcessPipelineOptions extends Omit<CpuDeviceOptions, 'shard' | 'group'> {
  /** Throw unless every TP rank of a stage hands on bit-identical output. Default false. */
  isRankAgreementChecked?: boolean;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * One model replica split TnPm over tp * pp CpuDevices in this thread: the TP ranks of a stage
 * run as concurrent async tasks joined by an InProcessGroup, and the hidden state goes stage to
 * stage in memory. Executes steps like a single CpuDevice; the answer is TP rank 0's.
 */
export class InProcessPipeline {
  /** devices[ppStage][tpRank] */
  readonly devices: CpuDevice[][];
  readonly numKvBlocks: number;
  readonly blockSize: number;

  private constructor(
    devices: CpuDevice[][],
    private readonly isRankAgreementChecked: boolean,
  ) {
    this.devices = devices;
    this.numKvBlocks = Math.min(...devices.flat().map((d) => d.numKvBlocks));
    this.blockSize = devices[0][0].blockSize;
  }

  static async load(
    modelDir: string,
    parallel: Pick<ParallelConfig, 'tp' | 'pp'>,
    options: InProcessPipelineOptions = {},
  ): Promise<InProcessPipeline> {
    const { isRankAgreementChecked = false, ...deviceOptions } = options;
    const { tp, pp } = parallel;
    const devices: CpuDevice[][] = [];
    for (let ppStage = 0; ppStage < pp; ppStage++) {
      const groups = InProcessGroup.create(tp);
      const stage: CpuDevice[] = [];
      for (let tpRank = 0; tpRank < tp; tpRank++) {
        const shard = { tp, tpRank, pp, ppStage };
        stage.push(await CpuDevice.load(modelDir, { ...deviceOptions, shard, group: groups[tpRank] }));
      }
      devices.push(stage);
    }
    return new InProcessPipeline(devices, isRankAgreementChecked);
  }

  get config(): ModelConfig {
    return this.devices[0][0].config;
  }

  /** Weight bytes of each device, [ppStage][tpRank]. */
  get weightBytes(): number[][] {
    return this.devices.map((stage) => stage.map((d) => d.weightBytes));
  }

  async execute(step: StepBatch): Promise<StepResult> {
    let hidden: Float32Array | undefined;
    for (const [ppStage, stage] of this.devices.entries()) {
      const outputs = await Promise.all(stage.map((device) => device.executeStage(step, hidden)));
      if (this.isRankAgreementChecked) this.checkAgreement(ppStage, outputs);
      const first = outputs[0];
      if ('hidden' in first) {
        hidden = first.hidden;
      } else {
        return first;
      }
    }
    throw new Error('unreachable: the last stage returned no StepResult');
  }

  close(): void {
    for (const device of this.devices.flat()) device.close();
  }

  private checkAgreement(ppStage: number, outputs: StageOutput[]): void {
    const arrays = outputs.map((o) =>
      'hidden' in o ? [o.hidden] : [Float32Array.from(o.sampled.map((s) => s.tokenId)), ...(o.logits ?? [])],
    );
    arrays.forEach((rankArrays, rank) => {
      if (rankArrays.length !== arrays[0].length || rankArrays.some((a, i) => !sameBits(a, arrays[0][i]))) {
        throw new Error(`stage ${ppStage}: TP rank ${rank}'s output differs from rank 0's`);
      }
    });
  }
}
