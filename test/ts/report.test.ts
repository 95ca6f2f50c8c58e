import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import { DBN } from 'spark-dbn';
import { pngDataUri, tileGrid } from '../../ts/report/png.js';
import { type ReportRound, renderReport } from '../../ts/report/report.js';
import { checkPage } from './helpers/browser.js';

const chartJs = readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');

function rounds(): ReportRound[] {
  const out: ReportRound[] = [];
  const base = { executor: 'driver', trainSeconds: 0.3, roundSeconds: 0.4, mergeSeconds: 0.02, publishSeconds: 0.01, merged: true };
  let t = 1_700_000_000_000;
  for (const [topic, layer] of [['layer0', 0], ['layer1', 1], ['finetune', -1]] as const) {
    for (let round = 1; round <= 6; round++) {
      for (let partition = 0; partition < 2; partition++) {
        t += 200;
        out.push({ ...base, topic, layer, round, epoch: Math.floor((round - 1) / 2), partition, timestampMs: t,
          ...(layer >= 0 ? { reconstructionError: 10 / round, freeEnergy: -20 - round, heldOutFreeEnergy: -20 } : { loss: 1 / round, accuracy: 0.8 + round / 100 }) });
      }
    }
  }
  return out;
}

describe('run report (HTML)', function () {
  this.timeout(120000);

  it('draws a grey image as a PNG that decodes to the same pixels, and tiles a grid with each tile scaled to its range', () => {
    const img = { width: 3, height: 2, data: Float32Array.from([0, 0.5, 1, 2, -1, 0.25]) };
    const png = PNG.sync.read(Buffer.from(pngDataUri(img).replace(/^data:image\/png;base64,/, ''), 'base64'));
    expect([png.width, png.height]).to.deep.equal([3, 2]);
    // RGBA after decoding; values clamped to [0, 1] and scaled to 0..255.
    expect([0, 1, 2, 3, 4, 5].map((i) => png.data[i * 4])).to.deep.equal([0, 128, 255, 255, 0, 64]);
    const grid = tileGrid([Float32Array.from([1, 3, 5, 9]), Float32Array.from([0, 0, 0, 0])], 2, 2, { pad: 1, normalise: true });
    expect([grid.width, grid.height]).to.deep.equal([7, 4]);
    // Tile 0 at (1, 1): (v - 1) / 8; tile 1 is flat: 0; padding mid-grey.
    expect(Array.from(grid.data.subarray(1 * 7 + 1, 1 * 7 + 3))).to.deep.equal([0, 0.25]);
    expect(Array.from(grid.data.subarray(2 * 7 + 1, 2 * 7 + 3))).to.deep.equal([0.5, 1]);
    expect(grid.data[1 * 7 + 4]).to.equal(0);
    expect(grid.data[0]).to.equal(0.5);
  });

  it('renders in headless Chromium from disk: no console error, no request, every chart drawn and every image decoded', async () => {
    const dbn = DBN.create([16, 8, 6], { seed: 3 });
    dbn.initOutput(3, 1);
    const confusion = [50, 2, 1, 3, 40, 0, 0, 5, 45];
    const mistakes = [{ pixels: new Float32Array(16).fill(0.7), label: 0, prediction: 1 }, { pixels: new Float32Array(16), label: 2, prediction: 1 }];
    const html = renderReport({ runId: 'r1 <&>', settings: [{ name: 'layers', value: '8,6' }, { name: 'note', value: '<b>x</b>' }],
      rounds: rounds(), classes: 3, confusion, mistakes, imageSide: 4 }, dbn, chartJs);
    const file = join(mkdtempSync(join(tmpdir(), 'report-')), 'report.html');
    writeFileSync(file, html);
    const seen = await checkPage(file);
    expect(seen.errors).to.deep.equal([]);
    expect(seen.requests).to.deep.equal([]);
    expect(seen.charts).to.deep.equal(['executors', 'free-energy', 'free-energy-gap', 'free-energy-gap-time', 'ft-accuracy', 'ft-loss',
      'recon-epoch', 'recon-time']);
    expect(seen.canvases).to.equal(8);
    // Filters, samples, two mistakes.
    expect(seen.images).to.equal(4);
    expect(seen.imagesLoaded).to.equal(4);
    expect(seen.text).to.contain('spark-dbn run r1 <&>');
    expect(seen.text).to.contain('<b>x</b>');
    expect(seen.text).to.contain('Accuracy 92.47% on 146 rows.');
  });
});
