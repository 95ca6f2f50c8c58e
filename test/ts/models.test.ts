import { expect } from 'chai';
import { DBN, matrix } from 'spark-dbn';
import { ModelCache } from '../../ts/service/models.js';

// The driver's sidecar keeps published versions here; Train calls post them to training workers.
describe('model cache (ts/service/models.ts)', () => {
  const model = () => DBN.create([6, 4, 3], { seed: 7, data: matrix(new Float32Array(6 * 5).fill(0.5), 6) });

  it('holds a copy on shared memory: the caller may change its model, the held one stays', () => {
    const cache = new ModelCache();
    const mine = model();
    cache.hold('v1', mine);
    const held = cache.get('v1')!;
    expect(held).to.not.equal(mine);
    // Posted to a worker without a copy (a structured clone of a SharedArrayBuffer shares it).
    for (const l of held.layers) for (const a of [l.W, l.vBias, l.hBias]) expect(a.buffer).to.be.instanceOf(SharedArrayBuffer);
    expect(Array.from(held.layers[1].W)).to.deep.equal(Array.from(mine.layers[1].W));
    const before = Array.from(held.layers[0].W);
    mine.layers[0].W.fill(9);
    expect(Array.from(held.layers[0].W)).to.deep.equal(before);
  });

  it('a wait for a version ends with the hold, at its time-out, or when its caller goes away', async () => {
    const cache = new ModelCache();
    const held = cache.whenHeld('v2', 20000);
    cache.hold('v2', model());
    expect(await held).to.equal(cache.get('v2'));
    expect(await cache.whenHeld('v3', 30)).to.equal(undefined);
    let stop: () => void = () => {};
    const t0 = Date.now();
    const cancelled = cache.whenHeld('v4', 20000, (s) => { stop = s; });
    stop();
    expect(await cancelled).to.equal(undefined);
    expect(Date.now() - t0).to.be.below(5000);
    // The cancelled waiter is gone: a later hold resolves only those still waiting.
    const later = cache.whenHeld('v4', 20000);
    cache.hold('v4', model());
    expect(await later).to.equal(cache.get('v4'));
  });
});
