import { status } from '@grpc/grpc-js';
import {
  type FineTuneConfig, fineTuneConfig, type RBMTrainConfig, replicaSeed, type Schedule, trainConfig,
} from 'spark-dbn';
import type {
  FineTuneConfig as FineTuneMessage, RBMTrainConfig as RBMMessage, Schedule as ScheduleMessage,
} from '../gen/engine.js';
import type { TrainedPart, TrainRequest } from '../gen/sidecar.js';
import { SidecarError } from './errors.js';

/**
 * The one place where the contract's typed options (proto/engine.proto) become the engine's configs:
 * an unset field takes the engine's default, a set one is checked against its range (both from the
 * proto's spec options), and each replica's seed is the engine's to derive.
 */

/** What one replica trains, with its checked config. */
export type ReplicaTopic =
  | { kind: 'pretrain'; layer: number; config: RBMTrainConfig }
  | { kind: 'fineTune'; config: FineTuneConfig };

function schedule(s: ScheduleMessage | undefined): Schedule | undefined {
  return s === undefined ? undefined : s.steps.map((st) => [st.epoch, st.value] as [number, number]);
}

/** The fields a message sets (ts-proto leaves unset optional fields undefined). */
function setFields(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function refuseSeed(seed: number | undefined, where: string): void {
  if (seed !== undefined) {
    throw new SidecarError(status.INVALID_ARGUMENT, `${where}.config.seed: is derived by the engine from run_seed and partition; leave it unset`);
  }
}

export function rbmConfig(m: RBMMessage | undefined, seed: number): RBMTrainConfig {
  const c = m ?? ({} as RBMMessage);
  refuseSeed(c.seed, 'pretrain');
  return trainConfig({ ...setFields(c), learningRate: schedule(c.learningRate), momentum: schedule(c.momentum), seed } as Partial<RBMTrainConfig>);
}

export function fineTuneOptions(m: FineTuneMessage | undefined, seed: number): FineTuneConfig {
  const c = m ?? ({} as FineTuneMessage);
  refuseSeed(c.seed, 'fine_tune');
  return fineTuneConfig({ ...setFields(c), learningRate: schedule(c.learningRate), momentum: schedule(c.momentum), seed } as Partial<FineTuneConfig>);
}

/** A Train call's topic as the engine takes it; INVALID_ARGUMENT when it names none. */
export function replicaTopic(r: TrainRequest): ReplicaTopic {
  if (r.pretrain) {
    const layer = r.pretrain.layer;
    return { kind: 'pretrain', layer, config: rbmConfig(r.pretrain.config, replicaSeed(r.runSeed, layer, r.partition)) };
  }
  if (r.fineTune) return { kind: 'fineTune', config: fineTuneOptions(r.fineTune.config, replicaSeed(r.runSeed, -1, r.partition)) };
  throw new SidecarError(status.INVALID_ARGUMENT, 'Train: the request sets no topic (pretrain or fine_tune)');
}

/** The engine's name of a trained part: its layer, or -1 for the whole network. */
export function partLayer(p: TrainedPart, call: string): number {
  if (p.layer !== undefined) return p.layer;
  if (p.wholeNetwork !== undefined) return -1;
  throw new SidecarError(status.INVALID_ARGUMENT, `${call}: the trained part is neither a layer nor the whole network`);
}
