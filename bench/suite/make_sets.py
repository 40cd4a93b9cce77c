#!/usr/bin/env python3
"""Writes the tuning suite of `npm run bench:suite`: anomaly streams as CSV files (features f1..fd, then outlier).

Two kinds, every one made deterministically from fixed seeds (the same files on every machine):

* Real data that ships inside the scikit-learn wheel (nothing is downloaded), made into one-class-versus-rest sets
  the way ODDS made its sets from classification data: the other classes are the normal records, a small random
  sample of one class the anomalies; the records in one fixed shuffle.
* Synthetic streams from a Gaussian mixture with correlated features, with the four kinds of anomaly that ADBench's
  generator defines (our own code, after the definitions in its paper): global (uniform over a box 10 % wider than
  the normal data), local (the same components with their covariance scaled by 5), clustered (the components'
  means scaled by 5 about the data's centre, covariance unchanged) and dependency (every feature drawn on its own
  from the normal records' marginal, so the values are typical and only their relations are broken); and drifting
  streams in time order (a mixture whose means move steadily, and one that changes concept twice) with local
  anomalies of the concept in force.

Sizes are kept small enough that every peer runs on every set in a few minutes (README, bench/suite.ts).
Never the ODDS or ADBench classical collections: those are the team's held-out check.

    python3 bench/suite/make_sets.py --out .cache/bench-suite [--list]

Runs in the bench venv of bench/peers/run_peers.py (created there on first use). Prints the sets it wrote as JSON.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
import run_peers  # noqa: E402  (its venv bootstrap)


# ---- real data, one class versus the rest ----


def one_class_vs_rest(name, X, y, anomaly_class, share, seed, description):
    import numpy as np

    rng = np.random.default_rng(seed)
    normal = np.flatnonzero(y != anomaly_class)
    candidates = np.flatnonzero(y == anomaly_class)
    count = max(3, int(round(share * len(normal) / (1 - share))))
    count = min(count, len(candidates))
    chosen = rng.choice(candidates, size=count, replace=False)
    rows = np.concatenate([normal, chosen])
    rng.shuffle(rows)
    labels = np.isin(rows, chosen).astype(int)
    return dict(name=name, X=X[rows].astype(float), y=labels, order="one fixed shuffle", description=description)


def real_sets():
    from sklearn import datasets

    out = []
    iris = datasets.load_iris()
    out.append(
        one_class_vs_rest(
            "iris-virginica", iris.data, iris.target, 2, 0.09, 11, "iris: setosa + versicolor normal, virginica sampled"
        )
    )
    wine = datasets.load_wine()
    out.append(
        one_class_vs_rest("wine-class0", wine.data, wine.target, 0, 0.077, 12, "wine: classes 1, 2 normal, class 0 sampled")
    )
    cancer = datasets.load_breast_cancer()
    # target 0 is malignant
    out.append(
        one_class_vs_rest(
            "breast-cancer", cancer.data, cancer.target, 0, 0.056, 13, "breast cancer (diagnostic): benign normal, malignant sampled"
        )
    )
    digits = datasets.load_digits()
    # 8x8 images pooled to 8x4 (pairs of columns added): 32 features.
    pooled = digits.data.reshape(-1, 8, 4, 2).sum(axis=3).reshape(-1, 32)
    for k in (0, 3, 8):
        out.append(
            one_class_vs_rest(
                f"digits-{k}", pooled, digits.target, k, 0.05, 20 + k, f"digits pooled to 32 pixels: digit {k} sampled, others normal"
            )
        )
    return out


# ---- synthetic ----


def random_mixture(rng, d, components, spread):
    """Means spread about 0 and random correlated covariances (a random rotation of uneven variances)."""
    import numpy as np

    means = rng.normal(0, spread, size=(components, d))
    covs = []
    for _ in range(components):
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        variances = rng.uniform(0.05, 1.0, size=d) ** 2
        covs.append((q * variances) @ q.T)
    weights = rng.dirichlet(np.full(components, 3.0))
    scales = rng.uniform(0.5, 20, size=d)  # features on different scales, as in real data
    offsets = rng.normal(0, 50, size=d)
    return dict(means=means, covs=np.array(covs), weights=weights, scales=scales, offsets=offsets)


def draw(rng, mix, n, means=None, cov_factor=1.0):
    import numpy as np

    means = mix["means"] if means is None else means
    which = rng.choice(len(mix["weights"]), size=n, p=mix["weights"])
    d = means.shape[1]
    X = np.empty((n, d))
    for c in range(len(mix["weights"])):
        idx = np.flatnonzero(which == c)
        if len(idx):
            X[idx] = rng.multivariate_normal(means[c], mix["covs"][c] * cov_factor, size=len(idx))
    return X


def to_units(mix, X):
    return X * mix["scales"] + mix["offsets"]


def synthetic_set(kind, d, n, share, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    components = 3 if d >= 5 else 2
    mix = random_mixture(rng, d, components, spread=1.5)
    n_anom = int(round(n * share))
    normal = draw(rng, mix, n - n_anom)
    if kind == "global":
        lo, hi = normal.min(axis=0), normal.max(axis=0)
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * 1.1
        anomalies = rng.uniform(mid - half, mid + half, size=(n_anom, d))
    elif kind == "local":
        anomalies = draw(rng, mix, n_anom, cov_factor=5.0)
    elif kind == "clustered":
        centre = normal.mean(axis=0)
        anomalies = draw(rng, mix, n_anom, means=centre + 5.0 * (mix["means"] - centre))
    elif kind == "dependency":
        # Each feature from a different normal record: marginals as in normal data, dependencies gone.
        anomalies = np.stack([normal[rng.integers(0, len(normal), size=n_anom), j] for j in range(d)], axis=1)
    else:
        raise ValueError(kind)
    X = np.concatenate([normal, anomalies])
    y = np.concatenate([np.zeros(len(normal), int), np.ones(n_anom, int)])
    order = rng.permutation(n)
    return dict(
        name=f"synth-{kind}-d{d}",
        X=to_units(mix, X[order]),
        y=y[order],
        order="stream order (i.i.d.)",
        description=f"{components}-component correlated Gaussian mixture, {kind} anomalies (ADBench's definition)",
    )


def drifting_set(kind, d, n, share, seed):
    """Time-ordered: normal records from a mixture that drifts; anomalies are local ones of the concept in force."""
    import numpy as np

    rng = np.random.default_rng(seed)
    components = 3
    mixes = [random_mixture(rng, d, components, spread=1.5)]
    if kind == "abrupt":
        for _ in range(2):
            m = random_mixture(rng, d, components, spread=1.5)
            m["scales"], m["offsets"] = mixes[0]["scales"], mixes[0]["offsets"]
            mixes.append(m)
    direction = rng.normal(size=d)
    direction *= 4.0 / np.linalg.norm(direction)  # the means travel 4 units over the stream
    is_anomaly = rng.random(n) < share
    X = np.empty((n, d))
    for t in range(n):
        progress = t / n
        if kind == "gradual":
            mix = mixes[0]
            means = mix["means"] + progress * direction
        else:
            mix = mixes[min(2, int(progress * 3))]
            means = mix["means"]
        X[t] = draw(rng, mix, 1, means=means, cov_factor=5.0 if is_anomaly[t] else 1.0)[0]
    description = (
        "means drift steadily (4 units over the stream)" if kind == "gradual" else "concept changes at 1/3 and 2/3"
    )
    return dict(
        name=f"drift-{kind}-d{d}",
        X=to_units(mixes[0], X),
        y=is_anomaly.astype(int),
        order="time order (drifting)",
        description=f"{description}; local anomalies (covariance x5) of the current concept",
    )


def all_sets():
    sets = real_sets()
    seed = 100
    for kind in ("global", "local", "clustered", "dependency"):
        for d in (3, 10, 25, 50):
            seed += 1
            sets.append(synthetic_set(kind, d, 2000, 0.05, seed))
    for kind in ("gradual", "abrupt"):
        for d in (5, 20):
            seed += 1
            sets.append(drifting_set(kind, d, 3000, 0.03, seed))
    return sets


def write_csv(path, X, y):
    d = X.shape[1]
    with open(path, "w") as f:
        f.write(",".join([f"f{j + 1}" for j in range(d)] + ["outlier"]) + "\n")
        for row, label in zip(X, y):
            f.write(",".join(repr(round(float(v), 6)) for v in row) + f",{int(label)}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the CSV files and index.json")
    ap.add_argument("--no-venv", action="store_true", help="use this Python as it is (needs numpy and scikit-learn)")
    args = ap.parse_args()
    if not args.no_venv and not run_peers.in_venv():
        run_peers.bootstrap(os.path.abspath(__file__))
    import numpy as np
    import sklearn

    os.makedirs(args.out, exist_ok=True)
    index = {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "sets": []}
    for s in all_sets():
        path = os.path.join(args.out, s["name"] + ".csv")
        write_csv(path, s["X"], s["y"])
        entry = {
            "name": s["name"],
            "file": os.path.basename(path),
            "records": int(len(s["y"])),
            "attributes": int(s["X"].shape[1]),
            "anomalies": int(s["y"].sum()),
            "order": s["order"],
            "description": s["description"],
        }
        index["sets"].append(entry)
        run_peers.log(f"{entry['name']}: {entry['records']} records, {entry['attributes']} attributes, {entry['anomalies']} anomalies")
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(json.dumps(index))


if __name__ == "__main__":
    main()
