/**
 * privml's public API (`import { … } from 'privml'`): models and tensors, plaintext sessions, and one
 * namespace per pillar, each doing what its CLI command does. Heavy dependencies load on first use.
 * See docs/api.md for one runnable example per pillar.
 */

export type { Dataset, DType, Feeds, LoadModelOptions, Model, ModelInfo, Session, Tensor, TensorArray } from './api/core.js';
export { FloatSession, InferenceSession, loadModel, modelInfo, saveModel, tensor } from './api/core.js';
export type { DatasetName, LoadDatasetOptions } from './api/data.js';
export { DATASETS, downloadDataset, loadDatasetSync as loadDataset, subsetDataset, whereDataset } from './api/data.js';
export type { DemoOptions, DemoResult } from './api/demo.js';
export { checkDemo, demo } from './api/demo.js';
export * as fhe from './api/fhe.js';
export * as hummingbird from './api/hummingbird.js';
export type {
  EpochResult,
  EvaluateOptions,
  EvaluateResult,
  ModelReport,
  Problem,
  StepProgress,
  TrainOptions,
  TrainResult,
  ZooExport,
  ZooModel,
} from './api/models.js';
export { evaluate, exportZoo, formatConfusion, formatModelReport, inspectModel, listZoo, problemsError, train } from './api/models.js';
export * as mpc from './api/mpc.js';
export * as proteus from './api/proteus.js';
export type { OutputSummary, RunFilesOptions, RunFilesReport } from './api/run-files.js';
export { runFiles } from './api/run-files.js';
export type { ServeOptions, ServerHandle } from './api/server.js';
export { serve } from './api/server.js';
export * as smartpaf from './api/smartpaf.js';
export { DataError, FileError, KeyError, ModelError, OptionError, PrivmlError, ProtocolError } from './errors.js';
export * as queue from './queue/public.js';
export { VERSION as version } from './version.js';
