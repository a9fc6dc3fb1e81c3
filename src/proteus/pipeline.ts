/**
 * The owner-side round trip without sentinels: partition → extract → optimize each subgraph →
 * reassemble. Used by tests and the benchmark to measure what the partition costs the optimizer.
 */
import type { Model } from '../onnx/ir.js';
import type { Wiring } from './extract.js';
import { extractParts } from './extract.js';
import { compileIslands } from './islands.js';
import type { OptLevel } from './optimize.js';
import { optimizeModels } from './optimize.js';
import type { Partition, PartitionOptions } from './partition.js';
import { partitionModel } from './partition.js';
import { reassemble } from './reassemble.js';

/** Options of `optimizeByParts`. */
export interface ByPartsOptions extends PartitionOptions {
  /** ORT optimization level applied to each subgraph (default 'extended'). */
  level?: OptLevel;
}

/** Everything the round trip produced. */
export interface ByPartsResult {
  partition: Partition;
  wiring: Wiring;
  /** The subgraphs as extracted and as optimized. */
  parts: Model[];
  optimized: Model[];
  /** The optimized subgraphs stitched back together. */
  model: Model;
}

/** Optimize a model subgraph by subgraph, as the Proteus optimizer party would, and stitch it back. */
export async function optimizeByParts(model: Model, opts: ByPartsOptions = {}): Promise<ByPartsResult> {
  const partition = partitionModel(model, opts);
  const { models: parts, wiring } = extractParts(model, partition);
  const optimized = await optimizeModels(parts, { level: opts.level ?? 'extended' });
  const stitched = reassemble(optimized, wiring);
  await compileIslands(stitched);
  return { partition, wiring, parts, optimized, model: stitched };
}
