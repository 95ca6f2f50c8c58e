import { expect } from 'chai';
import {
  blockRule, ConfigError, defaultFineTuneConfig, defaultTrainConfig, type FineTuneConfig, fineTuneConfig, optionSpecs,
  type RBMTrainConfig, replicaSeed, trainConfig,
} from 'spark-dbn';
import { replicaTopic } from '../../ts/service/options.js';
import { Kernels, SidecarLaunch, TrainRequest } from '../../ts/gen/sidecar.js';
import { LAUNCH_ENV, sidecarConfigFrom, sidecarConfigFromEnv } from '../../ts/service/config.js';

// Every field of the engine's configs, listed so that the compiler holds this list to the interfaces.
const RBM_FIELDS = {
  epochs: 10, batchSize: 100, k: 1, persistent: false, chains: 0, sampleVisible: true, learningRate: 0.05,
  momentum: [[0, 0.5], [5, 0.9]], weightDecay: 2e-4, sparsityTarget: 0, sparsityCost: 0, sparsityDecay: 0.95, seed: 1,
  monitorRows: 1000,
} satisfies Record<keyof RBMTrainConfig, unknown>;
const FINE_TUNE_FIELDS = {
  epochs: 10, batchSize: 100, learningRate: 0.1, momentum: [[0, 0.5], [5, 0.9]], weightDecay: 1e-5, seed: 1,
} satisfies Record<keyof FineTuneConfig, unknown>;

describe('engine options: defaults and ranges from proto/engine.proto', () => {
  it('every option of both configs has its default from the spec (the values the README and the guide give)', () => {
    // The spec is the only place these numbers are written in the tree; this test holds them to the documented ones.
    expect(defaultTrainConfig).to.deep.equal(RBM_FIELDS);
    expect(defaultFineTuneConfig).to.deep.equal(FINE_TUNE_FIELDS);
    expect(Object.keys(optionSpecs('RBMTrainConfig'))).to.have.members(Object.keys(RBM_FIELDS));
    expect(Object.keys(optionSpecs('FineTuneConfig'))).to.have.members(Object.keys(FINE_TUNE_FIELDS));
  });

  it('each range is checked at its bounds, open and closed, with the option named', () => {
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).to.be.instanceOf(ConfigError);
        return (e as Error).message;
      }
      return null;
    };
    expect(refused(() => trainConfig({ k: 1000 }))).to.equal(null);
    expect(refused(() => trainConfig({ k: 1001 }))).to.equal('k: must be an integer in [1, 1000], got 1001');
    expect(refused(() => trainConfig({ batchSize: 0 }))).to.equal('batchSize: must be an integer in [1, 1048576], got 0');
    expect(refused(() => trainConfig({ k: 1.5 }))).to.match(/^k: must be an integer/);
    expect(refused(() => trainConfig({ weightDecay: 1 }))).to.equal(null);
    expect(refused(() => trainConfig({ weightDecay: 1.01 }))).to.equal('weightDecay: must be in [0, 1], got 1.01');
    expect(refused(() => trainConfig({ momentum: [[0, 0.5], [3, 1]] }))).to.match(/^momentum: step 1 value must be in \[0, 0.999\]/);
    expect(refused(() => trainConfig({ persistent: 1 as unknown as boolean }))).to.equal('persistent: must be true or false');
    expect(refused(() => trainConfig({ seed: 2 ** 53 }))).to.match(/^seed: must be a safe integer/);
    expect(refused(() => trainConfig({ lr: 1 } as unknown as RBMTrainConfig))).to.equal('lr: is not a training option');
    expect(refused(() => fineTuneConfig({ weightDecay: -1 }))).to.equal('weightDecay: must be in [0, 1], got -1');
    // BlockRule's ranges: eta in [0, 1), zeta in (0, 100].
    const rule = (over: object) => () => blockRule({ rule: 'bmuf', replicas: 2, mode: 'sync', ...over });
    expect(refused(rule({ blockMomentum: 0 }))).to.equal(null);
    expect(refused(rule({ blockMomentum: 0.999999 }))).to.equal(null);
    expect(refused(rule({ blockMomentum: 1 }))).to.equal('blockMomentum: must be in [0, 1), got 1');
    expect(refused(rule({ blockLearningRate: 100 }))).to.equal(null);
    expect(refused(rule({ blockLearningRate: 0 }))).to.equal('blockLearningRate: must be in (0, 100], got 0');
    expect(blockRule({ rule: 'bmuf', replicas: 4, mode: 'sync' })).to.include({ eta: 0.75, zeta: 1 });
  });

  it("a replica's seed follows the run's seed, topic and partition in 64-bit arithmetic (the JVM's former rule, values from it)", () => {
    // Expected values computed with Java's long arithmetic (wrap at 2^64, truncating remainder).
    const cases: [number, number, number, number][] = [
      [1, 0, 0, 1015841], [1, 0, 1, 1120570], [1, -1, 3, 1322109], [7, 2, 15, 8602632], [-5, 0, 2, -4774719],
      [9007199254740991, 1, 4, 9007199254184240], [-9007199254740991, -1, 0, -9007199253733648],
      [123456789012345, 3, 99, -4520802012333172],
    ];
    for (const [seed, layer, partition, want] of cases) expect(replicaSeed(seed, layer, partition), `${seed}/${layer}/${partition}`).to.equal(want);
    expect(() => replicaSeed(2 ** 53, 0, 0)).to.throw(ConfigError, /runSeed: must be a safe integer/);
  });

  it('a Train request becomes the engine config it names: unset options at their defaults, the seed derived, a set seed refused', () => {
    const decoded = (r: object) => TrainRequest.decode(TrainRequest.encode(TrainRequest.fromPartial(r)).finish());
    const pre = replicaTopic(decoded({ pretrain: { layer: 1, config: { k: 3, learningRate: { steps: [{ epoch: 0, value: 0.02 }] } } },
      runSeed: 7, partition: 15 }));
    expect(pre).to.deep.equal({ kind: 'pretrain', layer: 1,
      config: { ...defaultTrainConfig, k: 3, learningRate: [[0, 0.02]], seed: replicaSeed(7, 1, 15) } });
    const ft = replicaTopic(decoded({ fineTune: { config: { weightDecay: 0.001 } }, runSeed: 7, partition: 2 }));
    expect(ft).to.deep.equal({ kind: 'fineTune', config: { ...defaultFineTuneConfig, weightDecay: 0.001, seed: replicaSeed(7, -1, 2) } });
    // An explicit zero is a value, not "unset" (proto3 optional keeps presence).
    const zero = replicaTopic(decoded({ pretrain: { layer: 0, config: { weightDecay: 0 } }, runSeed: 1, partition: 0 }));
    expect(zero.config.weightDecay).to.equal(0);
    expect(() => replicaTopic(decoded({ pretrain: { layer: 0, config: { seed: 5 } } }))).to.throw(/pretrain.config.seed: is derived by the engine/);
    expect(() => replicaTopic(decoded({ runSeed: 1 }))).to.throw(/sets no topic/);
    expect(() => replicaTopic(decoded({ pretrain: { layer: 0, config: { batchSize: 0 } } }))).to.throw(ConfigError, /batchSize: must be an integer in \[1, 1048576\], got 0/);
  });
});

describe('sidecar launch: one typed message (SidecarLaunch) with its defaults and ranges from proto/sidecar.proto', () => {
  const secret = 'x'.repeat(16);
  it('unset fields take the spec defaults; each bad value is named', () => {
    const c = sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, executorId: 'e1' }));
    expect(c).to.deep.equal({ host: '127.0.0.1', port: 0, secret, executorId: 'e1', maxReceiveMessageBytes: 64 * 1024 * 1024,
      exitOnStdinEnd: true, parentPollMs: 1000, trainWorkers: 1, workerThreads: 1, cacheBytes: 2 * 1024 * 1024 * 1024,
      kernels: Kernels.KERNELS_NATIVE, workerHeapMb: undefined });
    expect(sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, kernels: Kernels.KERNELS_TS })).kernels).to.equal(Kernels.KERNELS_TS);
    expect(() => sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, kernels: 7 as Kernels })))
      .to.throw(ConfigError, 'kernels: must be KERNELS_NATIVE or KERNELS_TS, got 7');
    expect(sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, exitOnStdinEnd: false, cacheBytes: 0 })))
      .to.include({ exitOnStdinEnd: false, cacheBytes: 0 });
    // The workers' heap cap: unset is V8's own limit; set, it is carried as given.
    expect(sidecarConfigFrom(SidecarLaunch.fromPartial({ secret })).workerHeapMb).to.equal(undefined);
    expect(sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, workerHeapMb: 64 })).workerHeapMb).to.equal(64);
    expect(() => sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, cacheBytes: -1 })))
      .to.throw(ConfigError, 'cacheBytes: must be an integer in [0, 9007199254740991], got -1');
    expect(() => sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, trainWorkers: 257 })))
      .to.throw(ConfigError, 'trainWorkers: must be an integer in [1, 256], got 257');
    expect(() => sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, maxReceiveMessageBytes: 1023 })))
      .to.throw(ConfigError, /^maxReceiveMessageBytes: must be an integer in \[1024, /);
    expect(() => sidecarConfigFrom(SidecarLaunch.fromPartial({ secret, host: '10.0.0.1' }))).to.throw(ConfigError, /host: must be a loopback/);
  });

  it('the environment carries it in SPARK_DBN_LAUNCH: missing or not a message, the error says so', () => {
    const bytes = SidecarLaunch.encode(SidecarLaunch.fromPartial({ secret, trainWorkers: 2 })).finish();
    expect(sidecarConfigFromEnv({ [LAUNCH_ENV]: Buffer.from(bytes).toString('base64') }).trainWorkers).to.equal(2);
    expect(() => sidecarConfigFromEnv({})).to.throw(ConfigError, /^SPARK_DBN_LAUNCH: is not set/);
    expect(() => sidecarConfigFromEnv({ [LAUNCH_ENV]: Buffer.from([0xff, 0xff, 0xff]).toString('base64') }))
      .to.throw(ConfigError, /^SPARK_DBN_LAUNCH: is not a base64 SidecarLaunch message/);
  });
});
