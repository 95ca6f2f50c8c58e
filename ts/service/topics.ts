import { type DBN } from 'spark-dbn';
import type { ModelUpdate } from '../io/update.js';

/** What the driver's sidecar keeps of a topic between merges: the published model and its block momentum. */
export interface TopicState {
  dbn: DBN;
  momentum: Float32Array;
}

/**
 * The answer of each topic's last merge, so that the next merge of that topic
 * needs only the replicas' updates (the model and the momentum would otherwise
 * cross the JVM boundary twice a round). A state is taken out while a merge uses
 * it: a merge that fails leaves none, and the caller re-sends the base.
 */
export class TopicStates {
  private readonly states = new Map<string, { id: string; state: TopicState }>();
  private next = 1;

  constructor(readonly capacity = 4) {}

  /** Keeps `state` as the topic's latest; answers its id. */
  hold(topic: string, state: TopicState): string {
    const id = `${topic}#${this.next++}`;
    this.states.delete(topic);
    this.states.set(topic, { id, state });
    while (this.states.size > this.capacity) this.states.delete(this.states.keys().next().value!);
    return id;
  }

  /** The topic's state if it is the one named `id` (removed from the store); undefined otherwise. */
  take(topic: string, id: string): TopicState | undefined {
    const s = this.states.get(topic);
    if (!s || s.id !== id) return undefined;
    this.states.delete(topic);
    return s.state;
  }

  drop(topic: string): void {
    this.states.delete(topic);
  }
}

/**
 * Replicas' updates kept where they were trained, for a merge on the same sidecar (local mode, where
 * the driver's sidecar is the executors'): the update's 1.6 MB (784-500) then crosses neither into the
 * JVM nor back. A merge takes each once; the oldest go beyond `capacity` (a retried task's orphan).
 */
export class HeldUpdates {
  private readonly updates = new Map<string, ModelUpdate>();
  private next = 1;

  constructor(readonly capacity = 64) {}

  hold(session: string, update: ModelUpdate): string {
    const id = `${session}#${this.next++}`;
    this.updates.set(id, update);
    while (this.updates.size > this.capacity) this.updates.delete(this.updates.keys().next().value!);
    return id;
  }

  has(id: string): boolean {
    return this.updates.has(id);
  }

  /** The update held as `id`, left held; undefined when none is. */
  get(id: string): ModelUpdate | undefined {
    return this.updates.get(id);
  }

  /** The update held as `id`, removed; undefined when none is (a restarted sidecar, or taken already). */
  take(id: string): ModelUpdate | undefined {
    const u = this.updates.get(id);
    this.updates.delete(id);
    return u;
  }
}
