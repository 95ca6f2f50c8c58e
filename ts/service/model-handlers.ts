import { status } from '@grpc/grpc-js';
import { decodeSnapshot, initLayer } from 'spark-dbn';
import type { GetModelRequest, InitLayerRequest, PutModelRequest, PutModelResponse, SnapshotResponse } from '../gen/sidecar.js';
import { SidecarError } from './errors.js';
import { snapshotOf } from './merge.js';
import type { Shared } from './shared.js';

// The calls that hold, make and answer model versions: PutModel, GetModel, InitLayer.

/** PutModel: a model version held for the Train and Transform calls that name it. */
export async function putModelHandler(s: Shared, r: PutModelRequest): Promise<PutModelResponse> {
  const cached = s.models.has(r.version);
  const dbn = cached ? s.models.get(r.version)! : await s.models.put(r.version, r.snapshot);
  return { sizes: dbn.sizes, classes: dbn.output?.nClasses ?? 0, cached };
}

/** GetModel: the snapshot of a held version, as the merge that made it would have answered it. */
export async function getModelHandler(s: Shared, r: GetModelRequest): Promise<SnapshotResponse> {
  const dbn = s.models.get(r.version);
  if (!dbn) throw new SidecarError(status.NOT_FOUND, `GetModel: version ${r.version} is not held here (a restarted sidecar?)`);
  return { snapshot: await snapshotOf(dbn, r.trainingConfig), sizes: dbn.sizes, momentum: Buffer.alloc(0), state: '' };
}

/** InitLayer: a model with one more layer (or the soft-max layer), initialised by the engine. */
export async function initLayerHandler(_s: Shared, r: InitLayerRequest): Promise<SnapshotResponse> {
  const base = r.base.length > 0 ? await decodeSnapshot(r.base) : null;
  const visible = r.visible || 'bernoulli';
  if (visible !== 'bernoulli' && visible !== 'gaussian') {
    throw new SidecarError(status.INVALID_ARGUMENT, `visible must be 'bernoulli' or 'gaussian', got '${visible}'`);
  }
  if (r.rbmLayer === undefined && r.softmax === undefined) {
    throw new SidecarError(status.INVALID_ARGUMENT, 'InitLayer: the request adds neither an RBM layer nor the soft-max layer');
  }
  const dbn = initLayer({ base, sizes: r.sizes, layer: r.rbmLayer ?? -1, visible, inputMeans: r.inputMeans,
    inputStddevs: r.inputStddevs, classes: r.softmax?.classes ?? 0, seed: r.seed });
  return { snapshot: await snapshotOf(dbn, r.trainingConfig), sizes: dbn.sizes, momentum: Buffer.alloc(0), state: '' };
}
