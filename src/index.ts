/**
 * privml's public API (`import { … } from 'privml'`): models and tensors, plaintext sessions, and one
 * namespace per pillar, each doing what its CLI command does. Heavy dependencies load on first use.
 * See docs/api.md for one runnable example per pillar.
 */
export { PrivmlError, ModelError, DataError, OptionError, ProtocolError, KeyError, FileError } from './errors.js';
export { tensor, loadModel, saveModel, modelInfo, FloatSession, InferenceSession } from './api/core.js';
export type { Feeds, Session, LoadModelOptions, Model, Tensor, DType, TensorArray, ModelInfo, Dataset } from './api/core.js';
export { loadDatasetSync as loadDataset, subsetDataset, DATASETS } from './api/data.js';
export type { DatasetName, LoadDatasetOptions } from './api/data.js';
export { VERSION as version } from './version.js';
export * as mpc from './api/mpc.js';
export * as hummingbird from './api/hummingbird.js';
export * as smartpaf from './api/smartpaf.js';
export * as fhe from './api/fhe.js';
export * as proteus from './api/proteus.js';
