#!/usr/bin/env python3
"""Writes the synthetic patient records of graphs/hospital_stats.yaml,
graphs/three_hospitals.yaml and graphs/five_hospitals*.yaml.

Hospitals with different numbers of patients; columns: patient_id, age, systolic_bp.
Deterministic (seeded), standard library only. Run from the repository root:
    python3 graphs/data/make_hospital_data.py
"""
import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(name: str, rows: int, seed: int, mean_bp: float) -> None:
    rng = random.Random(seed)
    with open(HERE / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "age", "systolic_bp"])
        for i in range(rows):
            age = rng.randint(18, 90)
            bp = round(rng.gauss(mean_bp + 0.3 * (age - 50), 14.0), 1)
            w.writerow([f"{name[0].upper()}{i:05d}", age, bp])


if __name__ == "__main__":
    write("north", 240, 7, 128.0)
    write("south", 173, 11, 133.0)
    write("east", 198, 13, 130.0)
    write("west", 151, 17, 127.0)
    write("central", 212, 19, 131.5)
