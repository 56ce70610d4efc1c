#!/usr/bin/env python3
"""How the evidence guard's terms and combiner were chosen (docs/guard.md).

Reads the per-frame statistics CSV of `cargo edgegen eval statistics --vae models/vae-fmnist
--count 2000 --out out/statistics.csv`, normalizes every candidate on the validation frames
only (median and 99th-percentile spread; two-sided: the 99th percentile of |x - median|),
and scores a guard by its mean AUROC over the outlier sets the guard's design is chosen on
(CHOSEN, as trainer/src/eval/ood.rs's CHOSEN_ON). Prints every candidate alone, the
structural guard, the evidence guard under each combiner (under ln sum exp also the share of
each set let through at the validation frames' 99th percentile), the forward selection from
the structural guard's three terms, and a weight per evidence term by coordinate search (the
other sets' figures are printed too: they chose nothing). Needs numpy only.
"""
import argparse
import csv
import sys

import numpy as np

CHOSEN = ["noise", "blur", "stuck-rows", "dead-columns", "saturation", "dead-sensor", "frozen-gray", "inverted",
          "salt-pepper", "rotated-90", "occluded", "under-exposed"]
# The structural guard's terms, then the evidence guard's (its eight, in the runtime's order:
# EVIDENCE_TERMS in runtime/src/guard.rs). (column, two-sided)
STRUCTURAL = [("cc", False), ("line_ratio", False), ("latent_score", False)]
EVIDENCE = STRUCTURAL + [("patch_ratio", False), ("rec_elbo_cc", False), ("rec_ratio_line", False),
                         ("rec_ratio_patch", False), ("img_max", True)]


def load(path):
    sets, names = {}, None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if names is None:
                names = [k for k in row if k not in ("set", "group", "index")]
            sets.setdefault(row["set"], []).append([float(row[k]) for k in names])
    if not sets:
        sys.exit(f"{path}: no rows (write it with `cargo edgegen eval statistics --vae models/vae-fmnist`)")
    return {k: np.array(v) for k, v in sets.items()}, {n: i for i, n in enumerate(names)}


def auroc(inliers, outliers):
    """P(outlier score > inlier score), ties counted half (Mann-Whitney)."""
    values = np.concatenate([inliers, outliers])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_in, n_out = len(inliers), len(outliers)
    return (ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="?", default="out/statistics.csv")
    a = ap.parse_args()
    sets, col = load(a.csv)
    outliers = [s for s in sets if s not in ("validation", "test")]
    missing = [s for s in CHOSEN if s not in outliers]
    if missing:
        sys.exit(f"{a.csv}: no frames of {missing}")

    def values(s, name):
        if name == "cc":
            return sets[s][:, col["bpd"]] - sets[s][:, col["coder_bpd"]]
        return sets[s][:, col[name]]

    def normalized(name, two_sided):
        v = values("validation", name)
        m = np.median(v)
        if two_sided:
            spread = max(np.percentile(np.abs(v - m), 99), 1e-6)
            return lambda s: np.abs(values(s, name) - m) / spread
        spread = max(np.percentile(v, 99) - m, 1e-6)
        return lambda s: (values(s, name) - m) / spread

    def guard(terms, combiner, weights=None):
        fs = [normalized(n, t) for n, t in terms]
        ws = weights or [1.0] * len(terms)

        def score(s):
            z = np.array([w * f(s) for w, f in zip(ws, fs)])
            if combiner == "max":
                return z.max(0)
            if combiner == "sum+":
                return np.clip(z, 0, None).sum(0)
            t = float(combiner.split("@")[1])
            top = z.max(0)
            return top + t * np.log(np.exp((z - top) / t).sum(0))
        return score

    def report(label, score, show=True, accepted=False):
        test = score("test")
        a = {o: auroc(test, score(o)) for o in outliers}
        chosen = np.mean([a[o] for o in CHOSEN])
        if show:
            threshold = np.percentile(score("validation"), 99)
            rejected = (test > threshold).mean()
            print(f"{label:58s} chosen {chosen:.4f}  test rejects {100 * rejected:4.2f}% | "
                  + " ".join(f"{o}={a[o]:.3f}" for o in outliers))
        if show and accepted:
            # At a threshold like the stored one (validation's 99th percentile): the share of
            # each outlier set let through, and its mean over the chosen sets.
            passed = {o: (score(o) <= threshold).mean() for o in outliers}
            print(f"{'  accepted at that threshold':58s} chosen {100 * np.mean([passed[o] for o in CHOSEN]):5.1f}% | "
                  + " ".join(f"{o}={100 * passed[o]:.1f}%" for o in outliers))
        return chosen

    print("== every candidate alone (one-sided, then two-sided)")
    for name in ["cc"] + [n for n in col if not n.startswith("mu_")]:
        for two in (False, True):
            report(name + (" |two-sided|" if two else ""), guard([(name, two)], "max"))
    print("== the structural guard and the evidence guard")
    report("structural: max of 3", guard(STRUCTURAL, "max"))
    report("structural + VAE bound: max of 4", guard(STRUCTURAL + [("rec_elbo_cc", False)], "max"))
    for combiner in ["max", "sum+", "lse@0.5", "lse@1"]:
        report(f"evidence: 8 terms, {combiner}", guard(EVIDENCE, combiner), accepted=combiner == "lse@1")
    candidates = [(n, False) for n in col if not n.startswith("mu_") and n not in ("bpd", "coder_bpd")] + [("cc", False)]
    candidates += [(n, True) for n in ("img_max", "img_mean", "img_ink", "img_cy", "img_cx")]
    # The selection that chose the evidence guard's terms (under the maximum, a term kept when
    # it adds 0.002 to the chosen sets' mean), then the same under ln sum exp.
    for combiner, step in (("max", 0.002), ("lse@1", 0.001)):
        print(f"== forward selection from the structural guard's terms, combiner {combiner}")
        current = list(STRUCTURAL)
        best = report("start", guard(current, combiner), False)
        while True:
            scored = sorted(((report("", guard(current + [c], combiner), False), c) for c in candidates if c not in current), reverse=True)
            if not scored or scored[0][0] <= best + step:
                break
            best, pick = scored[0]
            current.append(pick)
            report("+ " + pick[0] + (" |two-sided|" if pick[1] else ""), guard(current, combiner))

    # A weight per term of the evidence guard (z_i times w_i: the same as dividing its spread
    # by w_i), by coordinate search on the chosen sets: each weight times 0.5, 0.7, 1.4 or 2,
    # kept when the chosen sets' mean rises by 0.0005, until a round changes nothing.
    print("== a weight per evidence term, coordinate search on the chosen sets (combiner lse@1)")
    w = [1.0] * len(EVIDENCE)
    best = report("", guard(EVIDENCE, "lse@1", w), False)
    for _ in range(10):
        changed = False
        for i in range(len(w)):
            for factor in (0.5, 0.7, 1.4, 2.0):
                trial = w[:i] + [w[i] * factor] + w[i + 1:]
                value = report("", guard(EVIDENCE, "lse@1", trial), False)
                if value > best + 0.0005:
                    w, best, changed = trial, value, True
        if not changed:
            break
    report("weights " + " ".join(f"{n}={wi:g}" for (n, _), wi in zip(EVIDENCE, w)), guard(EVIDENCE, "lse@1", w), accepted=True)


if __name__ == "__main__":
    main()
