import { status } from '@grpc/grpc-js';
import { type BlockSettings, decodeSnapshot, finishTopic, type MergeRule as Rule } from 'spark-dbn';
import { type BlockRule, type CombineRequest, type CombineResponse, type MergeRequest, MergeRule,
  type SnapshotResponse } from '../gen/sidecar.js';
import { bytesToFloats, floatsToBytes } from '../io/floats.js';
import { decodeUpdate, encodeUpdate } from '../io/update.js';
import { SidecarError } from './errors.js';
import { combineHeld, mergeUpdates, snapshotOf } from './merge.js';
import { partLayer } from './options.js';
import type { Shared } from './shared.js';
import type { TopicState } from './topics.js';

// The calls that move models by replicas' updates: Merge on the driver's sidecar, Combine on an executor's.

const RULES = new Map<MergeRule, Rule>([
  [MergeRule.MERGE_RULE_BMUF, 'bmuf'], [MergeRule.MERGE_RULE_SUM, 'sum'], [MergeRule.MERGE_RULE_AVERAGE, 'average']]);

/** The contract's BlockRule as the engine's settings; the engine checks the values. */
function blockSettings(r: BlockRule | undefined, call: string): BlockSettings {
  const rule = r ? RULES.get(r.rule) : undefined;
  if (!r || !rule) throw new SidecarError(status.INVALID_ARGUMENT, `${call}: rule must be BMUF, SUM or AVERAGE, got ${r?.rule ?? 'none'}`);
  return { rule, replicas: r.replicas, mode: r.async ? 'async' : 'sync', inFlight: r.inFlight || undefined,
    blockMomentum: r.blockMomentum, blockLearningRate: r.blockLearningRate, nesterov: r.nesterov };
}

/**
 * Merge: the replicas' updates into the topic's published model under its rule, or (finish) the
 * topic's final model. The base is the request's, or the state this sidecar kept from the
 * topic's previous merge (MergeRequest.base_state).
 */
export async function mergeHandler(s: Shared, r: MergeRequest): Promise<SnapshotResponse> {
  const { topics, models, heldUpdates } = s;
  const settings = blockSettings(r.rule, 'Merge');
  // Held updates first: a merge that cannot have them all changes nothing (the caller redoes the round).
  const missing = r.updates.filter((u) => u.held && !heldUpdates.has(u.held)).map((u) => u.held);
  if (missing.length > 0) {
    throw new SidecarError(status.NOT_FOUND, `Merge: updates ${missing.join(', ')} are not held here (a restarted sidecar?): ` +
      'redo their round');
  }
  let held: TopicState | undefined;
  if (r.base.length === 0) {
    held = r.topic && r.baseState ? topics.take(r.topic, r.baseState) : undefined;
    if (!held) {
      throw new SidecarError(status.FAILED_PRECONDITION,
        `Merge: no state '${r.baseState}' of topic '${r.topic}' is kept here: send the base and its momentum`);
    }
  } else if (r.topic) {
    topics.drop(r.topic);
  }
  const base = held ? held.dbn : await decodeSnapshot(r.base);
  const momentum = held ? held.momentum : bytesToFloats(r.momentum);
  // Taken only now: a call refused for its base (FAILED_PRECONDITION) leaves them for the caller's re-send.
  const updates = r.updates.map((u) => (u.held ? { decoded: heldUpdates.take(u.held)!, staleness: u.staleness }
    : { bytes: u.update, staleness: u.staleness }));
  if (r.finish) {
    if (r.updates.length > 0) throw new SidecarError(status.INVALID_ARGUMENT, 'Merge: finish takes no updates');
    const dbn = finishTopic(base, partLayer(r.finish, 'Merge'), settings, momentum);
    return { snapshot: await snapshotOf(dbn, r.trainingConfig), sizes: dbn.sizes, momentum: Buffer.alloc(0), state: '' };
  }
  const m = mergeUpdates(base, { updates, settings,
    momentum, epochs: r.epochs });
  const snapshot = r.snapshotLater && r.publishAs ? Buffer.alloc(0) : await snapshotOf(m.dbn, r.trainingConfig);
  // Held as a copy: the kept state is moved in place by the topic's next merge, while rounds may still train from this version.
  if (r.publishAs) models.hold(r.publishAs, m.dbn);
  const state = r.topic ? topics.hold(r.topic, { dbn: m.dbn, momentum: m.momentum }) : '';
  return { snapshot, sizes: m.dbn.sizes, momentum: r.answerMomentum ? floatsToBytes(m.momentum) : Buffer.alloc(0), state };
}

/**
 * Combine: the held updates of this sidecar's replicas of one sync round, and the combined updates of
 * other executors, as one update (their mean as the merge rule weighs them).
 */
export async function combineHandler(s: Shared, r: CombineRequest): Promise<CombineResponse> {
  const { heldUpdates } = s;
  const settings = blockSettings(r.rule, 'Combine');
  if (r.held.length + r.updates.length === 0) throw new SidecarError(status.INVALID_ARGUMENT, 'Combine: no updates given');
  const missing = r.held.filter((id) => !heldUpdates.has(id));
  if (missing.length > 0) {
    throw new SidecarError(status.NOT_FOUND, `Combine: updates ${missing.join(', ')} are not held here (a restarted sidecar?): ` +
      'redo their round');
  }
  // Taken once combined: a call refused (a bad rule, updates of different rounds) leaves them held.
  const others = r.updates.map((b, i) => decodeUpdate(b, `updates[${i}]`));
  const combined = combineHeld(settings, [...r.held.map((id) => heldUpdates.get(id)!), ...others]);
  const update = encodeUpdate(combined);
  r.held.forEach((id) => heldUpdates.take(id));
  return { update, replicas: combined.replicas };
}
