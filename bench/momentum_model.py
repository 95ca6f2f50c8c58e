"""A linear model of block momentum in series with the replicas' own momentum (bench/README, "two momenta in series").

    var/bench-venv/bin/python bench/momentum_model.py

One direction of curvature k at a time, every replica alike (no noise): a replica takes H heavy-ball steps
(v <- m v - lr k x; x <- x + v) from the published look-ahead b, carrying its velocity v through syncs as the
replicas do; the merge is the engine's (G = x_H - b; D <- eta D + zeta G; b <- b + zeta G + eta D). Prints, for
each P and H, the worst per-step contraction (spectral radius ^ (1/H)) over the curvatures that the replicas'
own heavy ball keeps stable (lr k up to 1.8 of its 3.8): above 1, some direction rings without bound.
"""
import numpy as np

M = 0.9  # the replicas' momentum after epoch 5 (DBN's default schedule 0.5 -> 0.9)
CURVATURES = np.concatenate([np.geomspace(0.001, 0.05, 8), np.linspace(0.06, 1.8, 30)])


def contraction(a: float, eta: float, zeta: float, h: int) -> float:
    def block(state):
        b, v, d = state
        x = b
        for _ in range(h):
            v = M * v - a * x
            x = x + v
        g = x - b
        d = eta * d + zeta * g
        return np.array([b + zeta * g + eta * d, v, d])
    matrix = np.column_stack([block(e) for e in np.eye(3)])
    return max(abs(np.linalg.eigvals(matrix))) ** (1.0 / h)


def worst(eta: float, zeta: float, h: int) -> float:
    return max(contraction(a, eta, zeta, h) for a in CURVATURES)


if __name__ == "__main__":
    hs = (1, 2, 4, 8, 16, 24, 32, 50, 64, 128)
    print("bmuf, eta = 1 - 1/P, zeta = 1: worst per-step contraction by H")
    print("P  " + " ".join(f"{h:>7}" for h in hs))
    for p in (2, 4, 8):
        print(f"{p:<2} " + " ".join(f"{worst(1 - 1 / p, 1.0, h):>7.4f}" for h in hs))
    print("P = 2, summing (eta 0, zeta 2): " + " ".join(f"H {h}: {worst(0.0, 2.0, h):.4f}" for h in (1, 2, 4, 8, 32)))
