import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { decodeSnapshot } from 'spark-dbn';
import type { ReportRequest, ReportResponse } from '../gen/sidecar.js';
import { renderReport } from '../report/report.js';
import { SidecarError } from './errors.js';
import type { Shared } from './shared.js';

/** Chart.js's UMD build: beside the bundled sidecar (scripts/bundle.mjs puts it there), else from node_modules. */
let chartJs: string | undefined;
function chartJsSource(): string {
  if (chartJs === undefined) {
    const beside = new URL('./chart.umd.min.js', import.meta.url);
    chartJs = existsSync(beside) ? readFileSync(beside, 'utf8')
      : readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

/** Report: the run's page, drawn by the engine from the model and the figures the JVM read from the run's tables. */
export async function reportHandler(_s: Shared, r: ReportRequest): Promise<ReportResponse> {
  const dbn = await decodeSnapshot(r.snapshot);
  if (r.classes < 0 || (r.confusion.length > 0 && r.confusion.length !== r.classes * r.classes)) {
    throw new SidecarError(status.INVALID_ARGUMENT, `Report: confusion has ${r.confusion.length} counts for ${r.classes} classes`);
  }
  if (r.imageSide < 0) throw new SidecarError(status.INVALID_ARGUMENT, `Report: imageSide is ${r.imageSide}`);
  const html = renderReport({
    runId: r.runId, settings: r.settings, classes: r.classes, confusion: r.confusion.map(Number), imageSide: r.imageSide,
    mistakes: r.mistakes.map((m) => ({ pixels: Float32Array.from(m.pixels), label: m.label, prediction: m.prediction })),
    rounds: r.rounds.map((x) => ({ ...x, timestampMs: Number(x.timestampMs) })),
  }, dbn, chartJsSource());
  return { html: Buffer.from(html, 'utf8') };
}
