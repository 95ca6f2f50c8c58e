import type { DBN } from '../rbm/dbn.js';
import { type Gray, pngDataUri, tileGrid } from './png.js';

/** A replica round as the report reads it (the rounds table; absent figures do not apply). */
export interface ReportRound {
  topic: string;
  layer: number;
  round: number;
  epoch: number;
  partition: number;
  executor: string;
  reconstructionError?: number;
  freeEnergy?: number;
  /** Mean free energy of the partition's held-out rows (none held out: absent). */
  heldOutFreeEnergy?: number;
  loss?: number;
  accuracy?: number;
  trainSeconds: number;
  roundSeconds: number;
  mergeSeconds: number;
  publishSeconds: number;
  timestampMs: number;
  merged: boolean;
}

export interface ReportInput {
  runId: string;
  settings: { name: string; value: string }[];
  rounds: ReportRound[];
  /** counts[label * classes + prediction]; empty without labelled test data. */
  classes: number;
  confusion: number[];
  mistakes: { pixels: Float32Array; label: number; prediction: number }[];
  /** Side of an input row's square image; 0 when the inputs are not images. */
  imageSide: number;
}

/** Chart.js configurations, one per canvas, drawn by the page's own copy of Chart.js. */
type ChartConfig = { id: string; title: string; config: unknown };

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The merged rounds of a topic, one point per round (figures averaged over its replicas). */
function perRound(rounds: ReportRound[], topic: string, start: number) {
  const byRound = new Map<number, ReportRound[]>();
  for (const r of rounds) if (r.topic === topic && r.merged) byRound.set(r.round, [...(byRound.get(r.round) ?? []), r]);
  const points = [...byRound.entries()].sort((a, b) => a[0] - b[0]).map(([round, rs]) => {
    const fig = (f: (r: ReportRound) => number | undefined) => {
      const xs = rs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
      return xs.length ? mean(xs) : null;
    };
    return { round, epoch: Math.max(...rs.map((r) => r.epoch)), seconds: (Math.max(...rs.map((r) => r.timestampMs)) - start) / 1000,
      recon: fig((r) => r.reconstructionError), freeEnergy: fig((r) => r.freeEnergy), heldOut: fig((r) => r.heldOutFreeEnergy),
      loss: fig((r) => r.loss),
      accuracy: fig((r) => r.accuracy) };
  });
  // Spread a topic's rounds over its epochs: round k of an epoch with n rounds sits at epoch + (k + 1) / n.
  const counts = new Map<number, number>();
  for (const p of points) counts.set(p.epoch, (counts.get(p.epoch) ?? 0) + 1);
  const seen = new Map<number, number>();
  return points.map((p) => {
    const k = seen.get(p.epoch) ?? 0;
    seen.set(p.epoch, k + 1);
    return { ...p, x: p.epoch + (k + 1) / counts.get(p.epoch)! };
  });
}

function lineChart(id: string, title: string, xLabel: string, yLabel: string,
  series: { label: string; points: { x: number; y: number | null }[] }[]): ChartConfig {
  return {
    id, title, config: {
      type: 'line',
      data: { datasets: series.map((s) => ({ label: s.label, data: s.points, pointRadius: 0, borderWidth: 2, spanGaps: true })) },
      options: {
        animation: false, responsive: false, parsing: false,
        scales: { x: { type: 'linear', title: { display: true, text: xLabel } }, y: { title: { display: true, text: yLabel } } },
        plugins: { title: { display: true, text: title } },
      },
    },
  };
}

function image(img: Gray, alt: string, cls = 'grid'): string {
  return `<img class="${cls}" alt="${esc(alt)}" width="${img.width}" height="${img.height}" src="${pngDataUri(img)}">`;
}

/**
 * The run as one self-contained HTML page: settings; per layer, reconstruction error and the training
 * rows' free energy against epoch and wall time; fine-tuning loss and accuracy; the first layer's
 * filters; samples from the model (top-down daydreams); the confusion matrix and mistakes; per
 * executor, time per round split into training and the rest. `chartJs` is Chart.js's UMD build,
 * inlined so that the page opens from disk with no network.
 */
export function renderReport(input: ReportInput, dbn: DBN, chartJs: string): string {
  const start = Math.min(...input.rounds.map((r) => r.timestampMs - r.roundSeconds * 1000), Date.now());
  const topics = [...new Set(input.rounds.map((r) => r.topic))].sort((a, b) => (a === 'finetune' ? 1 : b === 'finetune' ? -1 : a.localeCompare(b)));
  const layers = topics.filter((t) => t !== 'finetune');
  const charts: ChartConfig[] = [];
  const sections: string[] = [];

  if (layers.length > 0) {
    const series = layers.map((t) => ({ t, pts: perRound(input.rounds, t, start) }));
    charts.push(lineChart('recon-epoch', 'Reconstruction error by epoch', 'epoch', 'mean squared error',
      series.map(({ t, pts }) => ({ label: t, points: pts.map((p) => ({ x: p.x, y: p.recon })) }))));
    charts.push(lineChart('recon-time', 'Reconstruction error by wall time', 'seconds since the start', 'mean squared error',
      series.map(({ t, pts }) => ({ label: t, points: pts.map((p) => ({ x: p.seconds, y: p.recon })) }))));
    charts.push(lineChart('free-energy', 'Free energy of the training rows by epoch', 'epoch', 'mean free energy',
      series.map(({ t, pts }) => ({ label: t, points: pts.map((p) => ({ x: p.x, y: p.freeEnergy })) }))));
    const gap = series.some(({ pts }) => pts.some((p) => p.heldOut !== null));
    if (gap) {
      // Hinton's practical guide, section 6: training free energy falling away from held-out free energy is overfitting.
      const gapOf = (p: { heldOut: number | null; freeEnergy: number | null }) =>
        p.heldOut === null || p.freeEnergy === null ? null : p.heldOut - p.freeEnergy;
      charts.push(lineChart('free-energy-gap', 'Free energy gap, held-out minus training, by epoch', 'epoch', 'held-out - training',
        series.map(({ t, pts }) => ({ label: t, points: pts.map((p) => ({ x: p.x, y: gapOf(p) })) }))));
      charts.push(lineChart('free-energy-gap-time', 'Free energy gap, held-out minus training, by wall time', 'seconds since the start',
        'held-out - training', series.map(({ t, pts }) => ({ label: t, points: pts.map((p) => ({ x: p.seconds, y: gapOf(p) })) }))));
    }
    sections.push(`<h2>Pre-training</h2>
<p>Each replica measures its partition's monitor rows after every round; a point is the mean over the round's replicas.
${gap ? `The free-energy gap compares each partition's held-out rows (kept out of training) with its training rows: a gap that
keeps growing means the layer is overfitting (Hinton's practical guide, section 6).`
    : 'No rows were held out (train --held-out-rows N): the free-energy chart shows the training rows only, and no gap.'}</p>
<canvas id="recon-epoch" width="560" height="300"></canvas><canvas id="recon-time" width="560" height="300"></canvas>
<canvas id="free-energy" width="560" height="300"></canvas>
${gap ? '<canvas id="free-energy-gap" width="560" height="300"></canvas><canvas id="free-energy-gap-time" width="560" height="300"></canvas>' : ''}`);
  }
  if (topics.includes('finetune')) {
    const pts = perRound(input.rounds, 'finetune', start);
    charts.push(lineChart('ft-loss', 'Fine-tuning loss by epoch', 'epoch', 'cross-entropy',
      [{ label: 'training loss', points: pts.map((p) => ({ x: p.x, y: p.loss })) }]));
    charts.push(lineChart('ft-accuracy', 'Fine-tuning accuracy by epoch', 'epoch', 'accuracy (%)',
      [{ label: 'training accuracy', points: pts.map((p) => ({ x: p.x, y: p.accuracy === null ? null : p.accuracy * 100 })) }]));
    sections.push(`<h2>Fine-tuning</h2>
<canvas id="ft-loss" width="560" height="300"></canvas><canvas id="ft-accuracy" width="560" height="300"></canvas>`);
  }

  const side = input.imageSide;
  if (side > 0 && side * side === dbn.layers[0].nVisible) {
    const l0 = dbn.layers[0];
    const n = Math.min(100, l0.nHidden);
    // W: (V, H) row-major: hidden unit j's filter is column j.
    const filters = Array.from({ length: n }, (_, j) => {
      const f = new Float32Array(l0.nVisible);
      for (let i = 0; i < l0.nVisible; i++) f[i] = l0.W[i * l0.nHidden + j];
      return f;
    });
    const samples = dbn.sample({ chains: 30, steps: 1000, seed: 7 });
    const dreams = Array.from({ length: samples.rows }, (_, r) => samples.data.subarray(r * samples.cols, (r + 1) * samples.cols));
    sections.push(`<h2>What the network learnt</h2>
<h3>First layer's filters</h3><p>The incoming weights of ${n} of the ${l0.nHidden} hidden units of layer 0, each scaled to its own range.</p>
${image(tileGrid(filters, side, 10, { scale: 2, normalise: true }), 'first-layer filters')}
<h3>Samples from the model</h3><p>Top-down daydreams: 1,000 steps of Gibbs sampling in the top RBM, then one pass down through the
generative weights (Hinton, Osindero &amp; Teh 2006), 30 chains.</p>
${image(tileGrid(dreams, side, 10, { scale: 2 }), 'samples from the model')}`);
  }

  const k = input.classes;
  if (k > 0 && input.confusion.length === k * k) {
    const total = input.confusion.reduce((a, b) => a + b, 0);
    let correct = 0;
    for (let c = 0; c < k; c++) correct += input.confusion[c * k + c];
    const max = Math.max(1, ...input.confusion.filter((_, i) => i % (k + 1) !== 0));
    const cells = Array.from({ length: k }, (_, t) => `<tr><th>${t}</th>${Array.from({ length: k }, (_, p) => {
      const v = input.confusion[t * k + p];
      const shade = t === p ? '#dfe' : `rgba(220, 60, 60, ${(v / max).toFixed(3)})`;
      return `<td style="background:${shade}">${v}</td>`;
    }).join('')}</tr>`).join('\n');
    const mistakes = input.mistakes.filter((m) => m.pixels.length === side * side);
    sections.push(`<h2>Test set</h2><p id="test-accuracy">Accuracy ${(100 * correct / Math.max(1, total)).toFixed(2)}% on ${total.toLocaleString('en-US')} rows.</p>
<table class="confusion"><caption>Confusion matrix: rows are the true class, columns the predicted one</caption>
<tr><th></th>${Array.from({ length: k }, (_, p) => `<th>${p}</th>`).join('')}</tr>
${cells}</table>
${side > 0 && mistakes.length > 0 ? `<h3>Some mistakes</h3><div class="mistakes">${mistakes.map((m) =>
    `<figure>${image(tileGrid([m.pixels], side, 1, { scale: 2, pad: 0 }), `a ${m.label} taken for a ${m.prediction}`, 'digit')}` +
    `<figcaption>${m.label} &rarr; ${m.prediction}</figcaption></figure>`).join('')}</div>` : ''}`);
  }

  const executors = [...new Set(input.rounds.map((r) => r.executor))].sort();
  if (executors.length > 0) {
    const of = (e: string) => input.rounds.filter((r) => r.executor === e && r.merged);
    charts.push({
      id: 'executors', title: 'Time per round by executor', config: {
        type: 'bar',
        data: {
          labels: executors.map((e) => `executor ${e}`),
          datasets: [
            { label: 'training (s)', data: executors.map((e) => mean(of(e).map((r) => r.trainSeconds))) },
            { label: 'the rest of the round: job, transfers, merge, publish (s)',
              data: executors.map((e) => mean(of(e).map((r) => r.roundSeconds - r.trainSeconds + r.mergeSeconds + r.publishSeconds))) },
          ],
        },
        options: { animation: false, responsive: false, scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'seconds per round (mean)' } } },
          plugins: { title: { display: true, text: 'Time per round by executor' } } },
      },
    });
    sections.push(`<h2>Executors</h2><canvas id="executors" width="560" height="300"></canvas>`);
  }

  const settings = input.settings.map((s) => `<tr><th>${esc(s.name)}</th><td>${esc(s.value)}</td></tr>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>spark-dbn run ${esc(input.runId)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; color: #222; }
canvas { display: inline-block; margin: 0 12px 12px 0; }
table { border-collapse: collapse; margin: 1em 0; } th, td { padding: 2px 8px; border: 1px solid #ddd; text-align: right; }
table.settings th { text-align: left; } table.settings td { text-align: left; font-family: monospace; }
img.grid, img.digit { image-rendering: pixelated; display: block; margin: 0.5em 0; }
.mistakes { display: flex; flex-wrap: wrap; gap: 8px; } figure { margin: 0; text-align: center; }
</style></head>
<body>
<h1>spark-dbn run ${esc(input.runId)}</h1>
<p>Layers ${dbn.sizes.join('-')}${dbn.output ? `-${dbn.output.nClasses} (fine-tuned)` : ''}.</p>
<h2>Settings</h2><table class="settings">${settings}</table>
${sections.join('\n')}
<script>${chartJs.replace(/<\/script/gi, '<\\/script')}</script>
<script>
const charts = ${JSON.stringify(charts.map((c) => ({ id: c.id, config: c.config })))};
for (const c of charts) new Chart(document.getElementById(c.id), c.config);
</script>
</body></html>
`;
}
