"""scikit-learn's BernoulliRBM on the same data, shape and batch size: the peer of `scripts/bench rbm`.
Prints one JSON line. Usage: python bench/sklearn_rbm.py <data.f32> <rows>"""
import json, resource, sys, time

import numpy as np
import sklearn
from sklearn.neural_network import BernoulliRBM
from threadpoolctl import threadpool_info

path, rows = sys.argv[1], int(sys.argv[2])
X = np.fromfile(path, dtype=np.float32).reshape(-1, 784)[:rows]
rbm = BernoulliRBM(n_components=500, learning_rate=0.01, batch_size=256, n_iter=1, random_state=1)
rbm.fit(X[: 4 * 256])  # warm-up, as for ours
t0 = time.perf_counter()
rbm.fit(X)
s = time.perf_counter() - t0
assert rbm.components_.dtype == np.float32, rbm.components_.dtype
blas = [f"{p.get('internal_api')} {p.get('version')} x{p.get('num_threads')}" for p in threadpool_info() if p.get("user_api") == "blas"]
print(json.dumps({"mode": "sklearn", "rows": rows, "seconds": s, "samplesPerS": rows / s, "version": sklearn.__version__,
                  "blas": ", ".join(blas), "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
