"""Two hospitals' joint blood-pressure statistics, from Python.

Each hospital's systolic blood pressures come from its own CSV file. Together they learn the
joint count, mean and variance, how many patients are above 140 mmHg, and a histogram in bands
of 20 mmHg, and nothing else about each other's records; the plot is drawn from the revealed
counts only. Every party and the dealer run in this process (see graphs/hospital_stats.yaml and
graphs/hospital_histogram.yaml for the computations).

    python examples/python/hospitals.py [--out hospitals.png]

Needs the mpcflow package (`pip install ./python`) and matplotlib.
"""

import argparse
import csv
from pathlib import Path

import numpy as np

import mpcflow

ROOT = Path(__file__).resolve().parents[2]


def blood_pressures(name: str) -> np.ndarray:
    with open(ROOT / "graphs/data" / name, newline="") as f:
        return np.array([float(row["systolic_bp"]) for row in csv.DictReader(f)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="hospitals.png", help="where to save the histogram plot (PNG)")
    args = parser.parse_args()

    inputs = {"north_bp": blood_pressures("north.csv"), "south_bp": blood_pressures("south.csv")}
    stats = mpcflow.run(ROOT / "graphs/hospital_stats.yaml", inputs)
    histogram = mpcflow.Pipeline.load(ROOT / "graphs/hospital_histogram.yaml")
    bands = histogram.run(inputs)["bands"]
    edges = [int(e) for e in histogram.nodes["bands"]["attrs"]["edges"]]

    print(f"patients: {int(stats['n_patients'])}")
    print(f"mean systolic pressure: {float(stats['mean_bp']):.1f} mmHg, standard deviation {float(np.sqrt(stats['var_bp'])):.1f}")
    print(f"above 140 mmHg: {int(stats['n_high'])}")
    for lo, hi, n in zip(edges, edges[1:], bands):
        print(f"  {lo:3d}-{hi:3d} mmHg: {int(n)}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(edges[:-1], bands, width=np.diff(edges), align="edge", edgecolor="black")
    ax.set_xlabel("systolic blood pressure (mmHg)")
    ax.set_ylabel("patients, both hospitals")
    ax.set_title("Joint histogram, computed under MPC")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
