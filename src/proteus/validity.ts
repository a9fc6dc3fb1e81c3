/** Whether onnxruntime accepts a member file: the check every member passes before it is written. */
import * as ort from 'onnxruntime-node';

/** Whether onnxruntime can create a session from `bytes` (no optimization: only validity is asked). */
export async function ortLoads(bytes: Uint8Array): Promise<boolean> {
  return (await ortLoadError(bytes)) === undefined;
}

/** onnxruntime's first error line for `bytes`, or undefined when it loads. */
export async function ortLoadError(bytes: Uint8Array): Promise<string | undefined> {
  try {
    const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 4, graphOptimizationLevel: 'disabled' });
    await s.release();
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0] ?? 'rejected';
  }
}
