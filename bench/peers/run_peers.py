#!/usr/bin/env python3
"""Runs the Python streaming anomaly detectors that stream-ml is compared with, on one CSV.

Protocol (the same as bench/engine.ts): in stream order, score each record, then learn it; one
pass; labels only for evaluation; no ranges or other facts about the data given in advance.
Randomised peers run once per seed; ROC-AUC and average precision are reported as mean and worst.

The first run creates a virtual environment at .cache/bench-venv with pinned versions of River and
PySAD from PyPI and re-executes itself in it. Progress goes to stderr, one JSON object to stdout.

    python3 bench/peers/run_peers.py --csv shuttle.csv [--label outlier] [--seeds 5] [--peers hst,...]
    python3 bench/peers/run_peers.py --csv-list a.csv b.csv ... [same options]
"""

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV = os.path.join(ROOT, ".cache", "bench-venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
# Pinned so that figures from different runs compare; pysad 0.7 installs with its own (current) pins.
REQUIREMENTS = ["river==0.26.1", "pysad==0.7.0", "numpy==2.4.6", "scipy==1.17.1", "scikit-learn==1.9.1"]


def log(*parts):
    print("[peers]", *parts, file=sys.stderr, flush=True)


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def bootstrap(script=None):
    """Creates the venv if needed, installs what is missing, and re-executes script (this one by default) in it."""
    if not os.path.exists(VENV_PYTHON):
        log("creating", os.path.relpath(VENV, ROOT))
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    stamp = os.path.join(VENV, "requirements.txt")
    wanted = "\n".join(REQUIREMENTS) + "\n"
    have = open(stamp).read() if os.path.exists(stamp) else ""
    if have != wanted:
        log("installing", " ".join(REQUIREMENTS))
        # Installed one by one so that a peer that cannot be installed does not block the others.
        failed = []
        for req in REQUIREMENTS:
            r = subprocess.run(
                [VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", req],
                stdout=sys.stderr,
            )
            if r.returncode != 0:
                failed.append(req)
        if failed:
            log("could not install:", ", ".join(failed))
        else:
            with open(stamp, "w") as f:
                f.write(wanted)
    os.execv(VENV_PYTHON, [VENV_PYTHON, script or os.path.abspath(__file__)] + sys.argv[1:])


# ---- metrics (exact; ties handled as scikit-learn does) ----


def _ranked(scores, labels):
    """Distinct score thresholds, from high to low, with the positives and negatives at each."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    groups = []
    i = 0
    while i < len(order):
        s = scores[order[i]]
        tp = fp = 0
        while i < len(order) and scores[order[i]] == s:
            if labels[order[i]]:
                tp += 1
            else:
                fp += 1
            i += 1
        groups.append((tp, fp))
    return groups


def roc_auc(scores, labels):
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted half."""
    groups = _ranked(scores, labels)
    pos = sum(g[0] for g in groups)
    neg = sum(g[1] for g in groups)
    if pos == 0 or neg == 0:
        return float("nan")
    # Walking from the highest score down, each positive beats the negatives not yet passed.
    area = 0.0
    neg_below = neg
    for tp, fp in groups:
        neg_below -= fp
        area += tp * (neg_below + fp / 2.0)
    return area / (pos * neg)


def average_precision(scores, labels):
    """sum over thresholds of (R_n - R_{n-1}) * P_n, as sklearn.metrics.average_precision_score."""
    groups = _ranked(scores, labels)
    pos = sum(g[0] for g in groups)
    if pos == 0:
        return float("nan")
    ap = 0.0
    tp_cum = fp_cum = 0
    for tp, fp in groups:
        tp_cum += tp
        fp_cum += fp
        if tp:
            ap += (tp / pos) * (tp_cum / (tp_cum + fp_cum))
    return ap


def self_test():
    import random

    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = random.Random(1)
    checked = 0
    for t in range(300):
        n = rng.randint(2, 80)
        # Every other case draws from a few values, to have ties.
        s = [rng.choice([0, 0.1, 0.5, 0.7, 1.0]) if t % 2 else rng.random() for _ in range(n)]
        y = [rng.randint(0, 1) for _ in range(n)]
        if sum(y) in (0, n):
            continue
        assert abs(roc_auc(s, y) - roc_auc_score(y, s)) < 1e-12, (s, y)
        assert abs(average_precision(s, y) - average_precision_score(y, s)) < 1e-12, (s, y)
        checked += 1
    print(f"metrics agree with scikit-learn on {checked} random cases")


# ---- data ----


def read_csv(path, label):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if label not in header:
            raise SystemExit(f"label column {label!r} not in header {header}")
        li = header.index(label)
        names = [h for i, h in enumerate(header) if i != li]
        rows, labels = [], []
        for row in reader:
            if not row:
                continue
            labels.append(1 if float(row[li]) != 0 else 0)
            rows.append([float(v) for i, v in enumerate(row) if i != li])
    return names, rows, labels


# ---- peers ----


class RunningMinMax:
    """Min-max scaling learnt from the stream so far, as River's MinMaxScaler does (no range given in advance).

    Scoring uses the ranges before the record; learning updates them first, like River's pipeline."""

    def __init__(self, n):
        self.lo = [math.inf] * n
        self.hi = [-math.inf] * n

    def update(self, x):
        for i, v in enumerate(x):
            if v < self.lo[i]:
                self.lo[i] = v
            if v > self.hi[i]:
                self.hi[i] = v

    def transform(self, x):
        out = []
        for i, v in enumerate(x):
            span = self.hi[i] - self.lo[i]
            out.append((v - self.lo[i]) / span if span > 0 and math.isfinite(span) else 0.0)
        return out


def peer_specs():
    """Each peer: name, library, whether seeds change it, a note on its setup, and a factory.

    A factory takes (names, seed) and returns step(x) -> score that scores x, then learns it."""

    def river_hst(names, seed):
        from river import anomaly, compose, preprocessing

        model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=seed))

        def step(x):
            d = dict(zip(names, x))
            s = model.score_one(d)
            model.learn_one(d)
            return s

        return step

    def river_loda(names, seed):
        from river import anomaly

        model = anomaly.LODA(seed=seed)

        def step(x):
            d = dict(zip(names, x))
            s = model.score_one(d)
            model.learn_one(d)
            return s

        return step

    def pysad_model(make):
        def factory(names, seed):
            import numpy as np

            model = make(len(names), seed)

            def step(x):
                return model.fit_score_partial(np.asarray(x, dtype=np.float64))

            return step

        return factory

    def pysad_rshash(names, seed):
        import numpy as np
        from pysad.models import RSHash

        n = len(names)
        # RS-Hash needs feature bounds up front; the stream's running min-max scaling maps into [0, 1] instead.
        model = RSHash(feature_mins=np.zeros(n), feature_maxes=np.ones(n), random_state=seed)
        scaler = RunningMinMax(n)

        def step(x):
            s = model.score_partial(np.asarray(scaler.transform(x), dtype=np.float64))
            scaler.update(x)
            model.fit_partial(np.asarray(scaler.transform(x), dtype=np.float64))
            return s

        return step

    def xstream(n, seed):
        from pysad.models import xStream

        return xStream(random_state=seed)

    def loda(n, seed):
        from pysad.models import LODA

        return LODA(random_state=seed)

    def rrcf(n, seed):
        from pysad.models import RobustRandomCutForest

        return RobustRandomCutForest(random_state=seed)

    return [
        ("river-hst", "river", river_hst, "HalfSpaceTrees defaults, MinMaxScaler pipeline (River's docs)"),
        ("river-loda", "river", river_loda, "LODA defaults, raw features (River's docs)"),
        ("pysad-xstream", "pysad", pysad_model(xstream), "xStream defaults, raw features"),
        ("pysad-rshash", "pysad", pysad_rshash, "RSHash defaults, running min-max scaling to bounds [0,1]"),
        ("pysad-loda", "pysad", pysad_model(loda), "LODA defaults, raw features"),
        ("pysad-rrcf", "pysad", pysad_model(rrcf), "RobustRandomCutForest defaults, raw features"),
    ]


def run_once(factory, names, rows, seed, deadline=None):
    step = factory(names, seed)
    scores = []
    t0 = time.perf_counter()
    for x in rows:
        scores.append(float(step(x)))
        if deadline is not None and len(scores) % 256 == 0 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - t0
    return scores, elapsed


def library_version(lib):
    try:
        from importlib.metadata import version

        return version(lib)
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", help="CSV with a header row; every column but the label is a feature")
    ap.add_argument("--csv-list", nargs="+", help="several such CSVs; prints {runs: [one object per CSV]}")
    ap.add_argument("--label", default="outlier")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--peers", default="", help="comma-separated subset of peer names (default: all)")
    ap.add_argument(
        "--slow-seconds",
        type=float,
        default=90.0,
        help="a peer whose first run takes longer than this gets no further seeds (default 90)",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=900.0,
        help="a single run stops after this many seconds and is reported as partial (default 900)",
    )
    ap.add_argument(
        "--timed-runs",
        type=int,
        default=5,
        help="extra timed passes (seed 0) for a peer whose pass takes under 5 s; their median is its rate (default 5)",
    )
    ap.add_argument("--no-venv", action="store_true", help="use this Python as it is")
    ap.add_argument("--self-test", action="store_true", help="check the metric functions against scikit-learn, then exit")
    args = ap.parse_args()
    if args.self_test:
        if not args.no_venv and not in_venv():
            bootstrap()
        self_test()
        return

    if not args.no_venv and not in_venv():
        bootstrap()

    if args.csv_list:
        # Several sets in one process (bench/suite.ts): the libraries are imported once.
        print(json.dumps({"runs": [dict(csv=path, **run_csv(path, args)) for path in args.csv_list]}))
        return
    if not args.csv:
        ap.error("--csv is required")
    print(json.dumps(run_csv(args.csv, args)))


def run_csv(path, args):
    """Every wanted peer on one CSV: the object run_peers.py prints."""
    names, rows, labels = read_csv(path, args.label)
    log(f"{os.path.basename(path)}: {len(rows)} records, {len(names)} features, {sum(labels)} labelled anomalies")
    wanted = [p for p in args.peers.split(",") if p]
    out = {
        "protocol": "prequential: score then learn each record, one pass, stream order",
        "python": sys.version.split()[0],
        "loadAverage": list(os.getloadavg()),
        "records": len(rows),
        "peers": [],
    }

    for name, lib, factory, setup in peer_specs():
        if wanted and name not in wanted:
            continue
        entry = {"name": name, "library": lib, "version": library_version(lib), "setup": setup}
        out["peers"].append(entry)
        try:
            factory(names, 0)  # imports the library, so its import time is not timed
        except Exception as e:  # a peer that is not installed or cannot start
            entry["error"] = f"{type(e).__name__}: {e}"
            log(name, "unavailable:", entry["error"])
            continue
        aucs, aps, rates, notes = [], [], [], []
        partial = False
        for seed in range(args.seeds):
            deadline = time.perf_counter() + args.max_seconds
            scores, elapsed = run_once(factory, names, rows, seed, deadline)
            n = len(scores)
            if n < len(rows):
                partial = True
                notes.append(f"seed {seed}: stopped after {args.max_seconds:.0f} s at {n} of {len(rows)} records")
            aucs.append(roc_auc(scores, labels[:n]))
            aps.append(average_precision(scores, labels[:n]))
            rates.append(n / elapsed)
            log(f"{name} seed {seed}: AUC {aucs[-1]:.4f} AP {aps[-1]:.4f} {rates[-1]:,.0f} rec/s ({elapsed:.1f} s)")
            if elapsed > args.slow_seconds and seed + 1 < args.seeds:
                notes.append(f"slow ({elapsed:.0f} s a pass): one seed, single timed run")
                break
        # The rate is the median of the passes after the first (which warms caches up); a fast peer gets extra
        # passes, so that a moment of load on the shared machine moves the median less.
        timed = rates[1:] if len(rates) >= 3 else rates
        if not partial and len(rows) / max(rates) < 5.0 and args.timed_runs > 0:
            for _ in range(args.timed_runs):
                _, elapsed = run_once(factory, names, rows, 0)
                timed.append(len(rows) / elapsed)
            log(f"{name}: {len(timed)} passes after the first, median {statistics.median(timed):,.0f} rec/s")
        entry.update(
            {
                "seeds": len(aucs),
                "partial": partial,
                "rocAuc": {"mean": statistics.fmean(aucs), "worst": min(aucs), "all": aucs},
                "averagePrecision": {"mean": statistics.fmean(aps), "worst": min(aps), "all": aps},
                "recordsPerSecond": statistics.median(timed),
                "timedRuns": len(timed),
                "notes": notes,
            }
        )
    return out


if __name__ == "__main__":
    main()
