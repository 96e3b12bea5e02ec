import type { ModelConfig } from './model-config.ts';

/**
 * RoPE inverse frequencies [headDim/2] in float64: invFreq[i] = theta^(-2i/headDim), then
 * rope_scaling applied as in Hugging Face `_compute_*_parameters`:
 * - linear: every frequency divided by factor (positions stretched).
 * - llama3: wavelengths shorter than originalMax/highFreqFactor kept, longer than
 *   originalMax/lowFreqFactor divided by factor, and in between a linear blend in
 *   (originalMax / wavelength) between the two.
 * Angle for position p is p * invFreq[i], applied to the rotate-half pair (i, i + headDim/2).
 */
export function ropeInvFreq(config: ModelConfig): Float64Array {
  const half = config.headDim / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = config.ropeTheta ** (-(2 * i) / config.headDim);
  const scaling = config.ropeScaling;
  if (scaling === null || scaling.type === 'default') return invFreq;
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) invFreq[i] /= scaling.factor;
    return invFreq;
  }
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = scaling;
  if (
    lowFreqFactor === undefined ||
    highFreqFactor === undefined ||
    originalMaxPositionEmbeddings === undefined
  ) {
    throw new Error(
      'llama3 rope_scaling needs lowFreqFactor, highFreqFactor and originalMaxPositionEmbeddings',
    );
  }
  const lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
  const highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const freq = invFreq[i];
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) continue;
    if (wavelen > lowFreqWavelen) {
      invFreq[i] = freq / factor;
    } else {
      const smooth =
        (originalMaxPositionEmbeddings / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      invFreq[i] = ((1 - smooth) * freq) / factor + smooth * freq;
    }
  }
  return invFreq;
}
