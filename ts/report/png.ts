import { PNG } from 'pngjs';

/** A grey image, row-major, values scaled by the caller to [0, 1] (clamped). */
export interface Gray {
  width: number;
  height: number;
  data: Float32Array;
}

/** The image as a PNG data URI, for an <img> in a self-contained page. */
export function pngDataUri(img: Gray): string {
  const png = new PNG({ width: img.width, height: img.height, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  const px = Buffer.alloc(img.width * img.height);
  for (let i = 0; i < px.length; i++) px[i] = Math.round(Math.min(1, Math.max(0, img.data[i])) * 255);
  png.data = px;
  return `data:image/png;base64,${PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }).toString('base64')}`;
}

/**
 * Square tiles of `side` x `side` values (one per row of `tiles`) laid out `cols` to a row, `pad`
 * pixels of mid-grey between them, each scaled up `scale` times. `normalise` maps each tile's
 * own range to [0, 1] (for weights); otherwise values are taken as intensities in [0, 1].
 */
export function tileGrid(tiles: Float32Array[], side: number, cols: number,
  opts: { pad?: number; scale?: number; normalise?: boolean } = {}): Gray {
  const pad = opts.pad ?? 1;
  const scale = opts.scale ?? 1;
  const rows = Math.ceil(tiles.length / cols);
  const cell = side * scale + pad;
  const width = cols * cell + pad;
  const height = rows * cell + pad;
  const data = new Float32Array(width * height).fill(0.5);
  tiles.forEach((t, k) => {
    let lo = 0;
    let hi = 1;
    if (opts.normalise) {
      lo = Infinity;
      hi = -Infinity;
      for (const v of t) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (hi <= lo) hi = lo + 1;
    }
    const x0 = pad + (k % cols) * cell;
    const y0 = pad + Math.floor(k / cols) * cell;
    for (let y = 0; y < side * scale; y++) {
      for (let x = 0; x < side * scale; x++) {
        const v = t[Math.floor(y / scale) * side + Math.floor(x / scale)];
        data[(y0 + y) * width + x0 + x] = (v - lo) / (hi - lo);
      }
    }
  });
  return { width, height, data };
}
