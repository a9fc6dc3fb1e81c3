/**
 * privml's public API (`import { … } from 'privml'`): models and tensors, plaintext sessions, and one
 * namespace per pillar, each doing what its CLI command does. Heavy dependencies load on first use.
 * See docs/api.md for one runnable example per pillar.
 */

export type { Dataset, DType, Feeds, LoadModelOptions, Model, ModelInfo, Session, Tensor, TensorArray } from './api/core.js';
export { FloatSession, InferenceSession, loadModel, modelInfo, saveModel, tensor } from './api/core.js';
export type { DatasetName, LoadDatasetOptions } from './api/data.js';
export { DATASETS, loadDatasetSync as loadDataset, subsetDataset } from './api/data.js';
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
export type { ServeOptions, ServerHandle } from './api/server.js';
export { serve } from './api/server.js';
export * as smartpaf from './api/smartpaf.js';
export { DataError, FileError, KeyError, ModelError, OptionError, PrivmlError, ProtocolError } from './errors.js';
export { VERSION as version } from './version.js';
