"""Parquet (id, features array<float> in [0, 1], label) -> rows of bytes, in id order, for bench/scaleout-run.ts.

    python bench/parquet_bytes.py DATA.parquet OUT.u8

Writes OUT.u8 (rows x 784 bytes, round(255 x)) and OUT.labels (a byte a row): 1.2 million rows are 0.9 GB as
bytes, where float32 would be 3.8 GB. Reads one row group at a time.
"""
import sys

import numpy as np
import pyarrow.parquet as pq


def main(src: str, out: str) -> None:
    ds = pq.ParquetDataset(src)
    ids, parts = [], []
    for frag in ds.fragments:
        f = pq.ParquetFile(frag.path)
        for g in range(f.num_row_groups):
            t = f.read_row_group(g, columns=["id", "features", "label"])
            feats = t.column("features").combine_chunks()
            width = len(feats[0]) if len(feats) else 0
            values = feats.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
            if values.min(initial=0) < 0 or values.max(initial=0) > 1:
                raise SystemExit(f"{frag.path}: features outside [0, 1]")
            parts.append((np.rint(values * 255).astype(np.uint8), t.column("label").to_numpy().astype(np.uint8)))
            ids.append(t.column("id").to_numpy())
    order = np.argsort(np.concatenate(ids), kind="stable")
    images = np.concatenate([p[0] for p in parts])[order]
    labels = np.concatenate([p[1] for p in parts])[order]
    images.tofile(out)
    labels.tofile(out.removesuffix(".u8") + ".labels")
    print(f"{out}: {len(images)} rows of {images.shape[1]} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
