"""The Python package against the command line, on the repository's pipelines.

Run by scripts/python-tests.sh (which `cargo test` runs): it installs the package into a fresh
virtual environment with `pip install ./python` and sets MPCFLOW_BIN to the command-line binary.
"""

import _thread
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import mpcflow

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("MPCFLOW_BIN")


def cli(*args: str) -> dict:
    if not BIN:
        pytest.fail("MPCFLOW_BIN is not set: run these tests with scripts/python-tests.sh")
    out = subprocess.run([BIN, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def csv_column(name: str) -> np.ndarray:
    lines = (ROOT / "graphs/data" / name).read_text().splitlines()
    col = lines[0].split(",").index("systolic_bp")
    return np.array([float(line.split(",")[col]) for line in lines[1:] if line])


def test_hospital_statistics_from_numpy_equal_the_command_lines_answer():
    north, south = csv_column("north.csv"), csv_column("south.csv")
    got = mpcflow.run(ROOT / "graphs/hospital_stats.yaml", {"north_bp": north, "south_bp": south})
    want = cli(
        "run", "graphs/hospital_stats.yaml", "--json",
        "--input", "north_bp=@graphs/data/north.csv:systolic_bp",
        "--input", "south_bp=@graphs/data/south.csv:systolic_bp",
    )["outputs"]
    assert set(got) == set(want)
    for name, value in got.items():
        # fss2pc's truncation is exact: the same words, so the same numbers.
        assert value.shape == ()
        assert value.item() == pytest.approx(want[name], abs=0), name
    assert got["n_high"].dtype == np.int64 and got["mean_bp"].dtype == np.float64


def test_numbers_lists_and_the_dtypes_of_outputs():
    out = mpcflow.run(ROOT / "graphs/millionaires.yaml", {"alice_wealth": 5_000_000, "bob_wealth": 3_000_000})
    assert out["alice_richer"].dtype == np.uint8 and out["alice_richer"].shape == ()
    assert out["alice_richer"] == 1
    p = mpcflow.Pipeline.load(ROOT / "graphs/millionaires.yaml")
    assert p.run({"alice_wealth": 7, "bob_wealth": np.int32(9)}, protocol="ref")["alice_richer"] == 0
    with pytest.raises(mpcflow.InputError, match="declared with rank 0"):
        p.run({"alice_wealth": [7], "bob_wealth": 9})
    h = mpcflow.Pipeline.load(ROOT / "graphs/hospital_stats.yaml")
    out = h.run({"north_bp": [120, 150], "south_bp": [[135.5][0]]})
    assert out["n_patients"] == 3 and out["n_high"] == 1
    out = h.run({"north_bp": [120, 150], "south_bp": [135.5]}, all_under_protocol=True)
    assert out["n_patients"] == 3 and out["n_high"] == 1


def test_plan_equals_the_command_lines_plan():
    p = mpcflow.Pipeline.load(ROOT / "graphs/hospital_stats.yaml")
    plan = p.plan({"n_north": 1000, "n_south": 2000})
    want = cli("plan", "graphs/hospital_stats.yaml", "--json", "--dim", "n_north=1000", "--dim", "n_south=2000")
    assert plan.to_dict() == want
    assert plan.rounds == want["total"]["critical_rounds"]
    assert plan.online_bytes == sum(want["total"]["online_bytes"])
    assert plan.dealer_bytes == sum(want["total"]["dealer_bytes"])
    assert [n.name for n in plan.nodes] == [n["name"] for n in want["nodes"]]
    assert all(n.rounds >= 0 for n in plan.nodes) and plan.dealer_bytes > 0
    assert plan.to_dot().startswith("digraph")
    assert p.plan(protocol="ref").protocol == "ref"
    # Each hospital compares its own rows in the clear; with every op under the protocol, not.
    assert any(n.form.startswith("in the clear on north") and n.local == "north" for n in plan.nodes)
    secure = p.plan({"n_north": 1000, "n_south": 2000}, all_under_protocol=True)
    want = cli("plan", "graphs/hospital_stats.yaml", "--json", "--all-under-protocol", "--dim", "n_north=1000", "--dim", "n_south=2000")
    assert secure.to_dict() == want and secure.fingerprint != plan.fingerprint
    assert not any(n.form.startswith("in the clear") for n in secure.nodes)
    assert secure.dealer_bytes > 4 * plan.dealer_bytes  # the squares stay under the protocol


def test_a_model_named_in_the_pipeline():
    image = np.load(ROOT / "tests/fixtures/onnx/digits_sample_image.npy")
    p = mpcflow.Pipeline.load(ROOT / "graphs/digits_model.yaml")
    assert [i["name"] for i in p.inputs if not i["from_model"]] == ["image"]
    out = p.run({"image": image})
    assert out["class"].tolist() == [4]
    assert out["logits"].shape == (1, 10) and int(np.argmax(out["logits"])) == 4


def test_digits_through_import_onnx(tmp_path):
    images = np.load(ROOT / "tests/fixtures/onnx/digits_test_images.npy")[:20]
    labels = np.load(ROOT / "tests/fixtures/onnx/digits_test_labels.npy")[:20]
    want = np.load(ROOT / "tests/fixtures/onnx/digits_test_logits.npy")[:20]
    p = mpcflow.import_onnx(
        ROOT / "tests/fixtures/onnx/digits_cnn.onnx", owner="clinic", input_owner="lab",
        out=tmp_path / "digits.yaml", reveal="logits", batch=20,
    )
    assert (tmp_path / "digits.weights" / "fc1_weight.npy").is_file()
    assert p.parties == ["lab", "clinic"] and p.input_dirs == [str(tmp_path / "digits.weights")]
    logits = p.run({"input": images})[next(o["name"] for o in p.outputs)]
    assert logits.shape == (20, 10)
    assert np.abs(logits - want).max() < 0.05
    assert (logits.argmax(axis=1) == want.argmax(axis=1)).all()
    acc = mpcflow.import_onnx(
        ROOT / "tests/fixtures/onnx/digits_cnn.onnx", owner="clinic", input_owner="lab",
        out=tmp_path / "acc.yaml", reveal="accuracy", batch=20,
    )
    n = acc.run({"input": images, "labels": labels})["n_correct"]
    assert int(n) == int((want.argmax(axis=1) == labels).sum())
    with pytest.raises(mpcflow.Error, match="cannot read"):
        mpcflow.import_onnx(tmp_path / "missing.onnx", owner="c", input_owner="l", out=tmp_path / "m.yaml")


def test_a_model_with_two_inputs_is_calibrated_on_a_sample_of_each(tmp_path):
    onnx_dir = ROOT / "tests/fixtures/onnx"
    samples = {"ids": onnx_dir / "dynamic_ids.npy", "x": str(onnx_dir / "dynamic_x.npy")}
    p = mpcflow.import_onnx(
        onnx_dir / "dynamic.onnx", owner="vendor", input_owner="user",
        out=tmp_path / "dynamic.yaml", reveal="logits", batch=3, calibrate=samples,
    )
    text = (tmp_path / "dynamic.yaml").read_text()
    assert "of `ids`, `x` calibrated on dynamic_ids.npy, dynamic_x.npy" in text, text
    out = p.run({"ids": np.load(samples["ids"]), "x": np.load(samples["x"])}, protocol="ref")
    want = np.load(onnx_dir / "dynamic_output.npy")
    assert np.abs(next(iter(out.values())).reshape(want.shape) - want).max() < 1e-3
    with pytest.raises(mpcflow.Error, match="no sample for the model input `x`"):
        mpcflow.import_onnx(
            onnx_dir / "dynamic.onnx", owner="vendor", input_owner="user",
            out=tmp_path / "m.yaml", batch=3, calibrate={"ids": samples["ids"]},
        )


def test_a_bad_pipeline_raises_pipeline_error_with_its_place():
    with pytest.raises(mpcflow.PipelineError) as e:
        mpcflow.Pipeline.load(ROOT / "tests/fixtures/bad/unknown_op.yaml").check()
    assert (e.value.line, e.value.column) == (7, 12)
    assert e.value.file.endswith("tests/fixtures/bad/unknown_op.yaml")
    assert "unknown op `sigmod`, did you mean `sigmoid`?" in str(e.value)
    with pytest.raises(mpcflow.PipelineError) as e:
        mpcflow.Pipeline.from_yaml("version: 1\nparties: [a, b]\nprotocol: ref\nnodes:\n  x: { op: relu, inputs: [y] }\n", name="inline.yaml").check()
    assert (e.value.file, e.value.line) == ("inline.yaml", 5)
    assert isinstance(e.value, mpcflow.Error)


def test_bad_inputs_raise_input_error():
    p = mpcflow.Pipeline.load(ROOT / "graphs/hospital_stats.yaml")
    with pytest.raises(mpcflow.InputError, match="no value given for input `south_bp`"):
        p.run({"north_bp": [120.0]})
    with pytest.raises(mpcflow.InputError, match="expected numbers"):
        p.run({"north_bp": ["high"], "south_bp": [1.0]})
    with pytest.raises(mpcflow.InputError, match="not a whole number"):
        mpcflow.run(ROOT / "graphs/millionaires.yaml", {"alice_wealth": 5.5, "bob_wealth": 3})


def long_pipeline() -> mpcflow.Pipeline:
    chain = "\n".join(f"  r{i}: {{ op: relu, inputs: [{'x' if i == 0 else f'd{i - 1}'}] }}\n  d{i}: {{ op: sub, inputs: [r{i}, y] }}" for i in range(12))
    return mpcflow.Pipeline.from_yaml(
        "version: 1\nparties: [a, b]\nprotocol: fss2pc\n"
        "inputs:\n  x: { owner: a, dtype: fixed, shape: [n] }\n  y: { owner: b, dtype: fixed, shape: [n] }\n"
        f"nodes:\n{chain}\noutputs:\n  d11: {{ reveal_to: [a] }}\n",
        name="long.yaml",
    )


def test_a_run_releases_the_gil():
    p = long_pipeline()
    n = 200_000
    result = {}
    worker = threading.Thread(target=lambda: result.update(p.run({"x": np.ones(n), "y": np.zeros(n)}, progress=False)))
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert "d11" in result and result["d11"].shape == (n,)
    assert ticks > 20, f"the main thread ran only {ticks} times during the run"


def test_ctrl_c_stops_a_long_run():
    # Python turns SIGINT into KeyboardInterrupt unless it started with SIGINT ignored (as a
    # background job is): install that handler, as an interactive session has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    p = long_pipeline()
    n = 2_000_000
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            p.run({"x": np.ones(n), "y": np.zeros(n)}, progress=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"control came back after {elapsed:.1f} s"
    # The process is still usable.
    assert mpcflow.run(ROOT / "graphs/millionaires.yaml", {"alice_wealth": 2, "bob_wealth": 1})["alice_richer"] == 1


def free_base_port() -> int:
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 60000)
        try:
            for port in range(base, base + 3):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    pytest.fail("no three free ports in a row")


def test_a_python_party_with_a_command_line_party_and_dealer(tmp_path):
    deployment = tmp_path / "parties.yaml"
    subprocess.run(
        [BIN, "certs", "new", str(tmp_path / "certs"), "--parties", "north,south,dealer",
         "--deployment", str(deployment), "--base-port", str(free_base_port())],
        cwd=ROOT, check=True, capture_output=True,
    )
    south = subprocess.Popen(
        [BIN, "party", "--as", "south", "--deployment", str(deployment), "graphs/hospital_stats.yaml",
         "--input", "south_bp=@graphs/data/south.csv:systolic_bp", "--json", "--timeout", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    sent = {}
    dealer = threading.Thread(target=lambda: sent.update(mpcflow.dealer(deployment, ROOT / "graphs/hospital_stats.yaml", timeout=30)))
    dealer.start()
    try:
        got = mpcflow.party("north", deployment, ROOT / "graphs/hospital_stats.yaml", {"north_bp": csv_column("north.csv")}, timeout=30)
    finally:
        dealer.join(60)
        out, err = south.communicate(timeout=60)
    assert south.returncode == 0, err
    theirs = json.loads(out)["outputs"]
    assert {k: v.item() for k, v in got.items()} == theirs
    assert set(sent) == {"north", "south"} and min(sent.values()) > 0
    with pytest.raises(mpcflow.PipelineError) as e:
        mpcflow.party("north", deployment, ROOT / "tests/fixtures/bad/malformed_yaml.yaml")
    assert e.value.line == 3


def test_a_python_data_owner_beside_command_line_servers_and_owners(tmp_path):
    deployment = tmp_path / "five.yaml"
    names = "server1,server2,north,south,east,west,central,dealer"
    subprocess.run(
        [BIN, "certs", "new", str(tmp_path / "certs"), "--parties", names,
         "--deployment", str(deployment), "--base-port", str(free_base_port())],
        cwd=ROOT, check=True, capture_output=True,
    )
    pipeline = "graphs/five_hospitals_2pc.yaml"
    common = ["--deployment", str(deployment), pipeline, "--json", "--timeout", "30"]
    procs = [subprocess.Popen([BIN, "dealer", *common[:3], "--timeout", "30"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs += [subprocess.Popen([BIN, "party", "--as", s, *common], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for s in ["server1", "server2"]]
    procs += [subprocess.Popen([BIN, "owner", "--as", h, *common, "--input", f"{h}_bp=@graphs/data/{h}.csv:systolic_bp"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for h in ["south", "east", "west", "central"]]
    try:
        got = mpcflow.owner("north", deployment, ROOT / pipeline, {"north_bp": csv_column("north.csv")}, timeout=30)
    finally:
        outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    theirs = json.loads(outs[-1][0])["outputs"]
    assert {k: v.item() for k, v in got.items()} == theirs
    assert got["n_patients"] == 974
    with pytest.raises(mpcflow.Error, match="not a data owner"):
        mpcflow.owner("server1", deployment, ROOT / pipeline, {}, timeout=5, connect_timeout=5)


def test_the_hospitals_example_writes_its_plot(tmp_path):
    png = tmp_path / "hospitals.png"
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples/python/hospitals.py"), "--out", str(png)],
        capture_output=True, text=True, check=True,
    )
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    north, south = csv_column("north.csv"), csv_column("south.csv")
    both = np.concatenate([north, south])
    counts, _ = np.histogram(both, bins=[80, 100, 120, 140, 160, 180, 200])
    for (lo, hi), n in zip(zip(range(80, 200, 20), range(100, 220, 20)), counts):
        assert f"{lo:3d}-{hi:3d} mmHg: {n}" in out.stdout, out.stdout
    assert f"patients: {len(both)}" in out.stdout


def test_histogram_equals_numpy():
    p = mpcflow.Pipeline.load(ROOT / "graphs/hospital_histogram.yaml")
    assert p.nodes["bands"]["op"] == "histogram"
    rng = np.random.default_rng(7)
    north, south = rng.uniform(60, 220, 500).round(1), rng.uniform(60, 220, 300).round(1)
    south[:7] = [80, 100, 200, 199.99, 60, 220, 140]
    got = p.run({"north_bp": north, "south_bp": south})["bands"]
    want, _ = np.histogram(np.concatenate([north, south]), bins=p.nodes["bands"]["attrs"]["edges"])
    assert got.tolist() == want.tolist()


def test_a_torch_model_through_secure_inference():
    if os.environ.get("MPCFLOW_REQUIRE_TORCH") == "1":
        import torch  # scripts/python-tests.sh provides it: missing is a failure there
    else:
        reason = os.environ.get("MPCFLOW_TORCH_SKIPPED", "torch is not installed (scripts/python-tests.sh provides it)")
        torch = pytest.importorskip("torch", reason=reason)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3),
    )
    x = torch.randn(2, 1, 6, 6)
    secure = mpcflow.secure_inference(model, x)
    got = secure(x)
    want = model(x).detach().numpy()
    assert got.shape == want.shape == (2, 3)
    # Fixed point with 16 fractional bits: a few ulp per layer, well under 1e-3 here.
    assert np.abs(got - want).max() < 1e-3, (got, want)
    y = torch.randn(2, 1, 6, 6)
    assert np.abs(secure(y.numpy()) - model(y).detach().numpy()).max() < 1e-3
    assert secure.plan().dealer_bytes > 0
    classes = mpcflow.secure_inference(model, x, reveal="class")(x)
    assert classes.tolist() == want.argmax(axis=1).tolist()


def test_a_progress_bar_when_asked(capsys):
    pytest.importorskip("tqdm")
    n = 1_000_000
    start = time.monotonic()
    out = long_pipeline().run({"x": np.ones(n), "y": np.zeros(n)}, progress=True)
    elapsed = time.monotonic() - start
    assert out["d11"].shape == (n,)
    err = capsys.readouterr().err
    # tqdm draws once the run has taken a second.
    if elapsed > 1.5:
        assert "node" in err, err


def test_a_progress_callback_that_raises_stops_the_run():
    def boom(done, total):
        raise RuntimeError("stop here")

    start = time.monotonic()
    with pytest.raises(RuntimeError, match="stop here"):
        long_pipeline().run({"x": np.ones(2_000_000), "y": np.zeros(2_000_000)}, progress=boom)
    assert time.monotonic() - start < 10
    assert mpcflow.run(ROOT / "graphs/millionaires.yaml", {"alice_wealth": 2, "bob_wealth": 1})["alice_richer"] == 1


def test_progress_reaches_the_callback():
    seen = []
    mpcflow.run(
        ROOT / "graphs/millionaires.yaml",
        {"alice_wealth": 2, "bob_wealth": 1},
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen and all(0 <= d <= t for d, t in seen) and seen[-1][1] > 0
