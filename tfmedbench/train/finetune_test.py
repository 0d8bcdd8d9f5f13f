"""`fit` end to end on tiny models: run directory, determinism, real distribution strategies."""

import csv
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tfmedbench.data import prepare
from tfmedbench.errors import NonFiniteLossError
from tfmedbench.models import resnet50
from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
from tfmedbench.train import fit

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = dict(epochs=2, image_size=32, resize_size=36, batch_size=4, depths=(1, 1, 1, 1), width=8)


@pytest.fixture(scope="module")
def shenzhen(tmp_path_factory):
    root = tmp_path_factory.mktemp("shenzhen")
    write_shenzhen_tree(str(root / "raw"), n_images=40, size=64)
    data_dir = str(root / "tfds")
    builder = prepare.build("tfmedbench_nih_shenzhen", str(root / "raw"), data_dir, verbose=False)
    return data_dir, builder


def run(data_dir, out, seed=0, **over):
    return fit("TXC", data_dir=data_dir, output_dir=str(out), seed=seed,
               overrides={**TINY, **over}, verbose=0)


def test_fit_writes_complete_run_directory(shenzhen, tmp_path):
    data_dir, builder = shenzhen
    result = run(data_dir, tmp_path / "run")
    files = set(os.listdir(result.run_dir))
    assert {"config.json", "history.csv", "tensorboard", "best.weights.h5",
            "backbone.weights.h5", "metrics.json", "predictions.npz"} <= files
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["status"] == "ok" and m["task"] == "TXC" and m["metric"] == "auc"
    assert 0.0 <= m["score"] <= 1.0 and m["per_class"] == {"tuberculosis": m["score"]}
    assert m["epochs_run"] == 2 and m["best_epoch"] in (1, 2)
    assert {"tensorflow", "keras", "python"} <= set(m["versions"])
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["recipe"]["epochs"] == 2 and config["recipe"]["depths"] == [1, 1, 1, 1]
    with open(result.run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    preds = np.load(result.run_dir / "predictions.npz")
    n_test = builder.info.splits["test"].num_examples
    assert preds["scores"].shape == (n_test, 1) and preds["labels"].shape == (n_test, 1)
    # The saved backbone loads into a fresh backbone with the trained values.
    backbone = resnet50(include_top=False, depths=(1, 1, 1, 1), width=8)
    backbone.load_weights(str(result.run_dir / "backbone.weights.h5"))
    for name in ("conv1", "layer3_0_bn2", "layer4_0_downsample_0"):
        for a, b in zip(backbone.get_layer(name).get_weights(),
                        result.model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_same_seed_gives_identical_results(shenzhen, tmp_path):
    data_dir, _ = shenzhen
    a = run(data_dir, tmp_path / "a", seed=5)
    b = run(data_dir, tmp_path / "b", seed=5)
    c = run(data_dir, tmp_path / "c", seed=6)
    assert a.metrics["score"] == b.metrics["score"]
    assert (a.run_dir / "history.csv").read_text().splitlines()[1].split(",")[1:3] == \
        (b.run_dir / "history.csv").read_text().splitlines()[1].split(",")[1:3]
    np.testing.assert_array_equal(np.load(a.run_dir / "predictions.npz")["scores"],
                                  np.load(b.run_dir / "predictions.npz")["scores"])
    assert not np.array_equal(np.load(a.run_dir / "predictions.npz")["scores"],
                              np.load(c.run_dir / "predictions.npz")["scores"])


def test_non_finite_loss_stops_and_keeps_files(shenzhen, tmp_path):
    data_dir, _ = shenzhen
    # A backbone file with huge (finite) values, as a diverged checkpoint: the last block's
    # residual add sums two of them to +inf in every channel, and the head's mixed-sign sum of
    # those is NaN in the first step (the BCE must not clip that NaN into a finite loss).
    backbone = resnet50(include_top=False, depths=(1, 1, 1, 1), width=8)
    for name in ("layer4_0_downsample_1", "layer4_0_bn3"):
        beta = backbone.get_layer(name).beta
        beta.assign(np.full(beta.shape, 3e38, np.float32))  # finite: 3e38 + 3e38 overflows
    bad = str(tmp_path / "nan.weights.h5")
    backbone.save_weights(bad)
    with pytest.raises(NonFiniteLossError, match="non-finite training loss"):
        fit("TXC", bad, data_dir=data_dir, output_dir=str(tmp_path / "nan"), overrides=TINY,
            verbose=0)
    m = json.loads((tmp_path / "nan" / "metrics.json").read_text())
    assert m["status"] == "failed" and "non-finite" in m["error"]
    assert (tmp_path / "nan" / "config.json").exists()


def worker(args, env=None, timeout=300):
    return subprocess.Popen(
        [sys.executable, "-m", "tfmedbench.testing.fit_worker", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def result_of(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_mirrored_strategy_over_two_logical_cpus(shenzhen, tmp_path):
    data_dir, builder = shenzhen
    res = result_of(worker([data_dir, str(tmp_path / "m"), "mirrored", "2"]))
    assert res["replicas"] == 2 and res["strategy"] == "MirroredStrategy"
    assert res["n_test"] == builder.info.splits["test"].num_examples  # gathered from both replicas
    assert 0.0 <= res["score"] <= 1.0
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["settings"]["global_batch"] == 8


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multiworker_two_local_processes_identical_weights(shenzhen, tmp_path):
    data_dir, builder = shenzhen
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                       "task": {"type": "worker", "index": index}})
        procs.append(worker([data_dir, str(tmp_path / "mw"), "multiworker"], env=env))
    try:
        results = [result_of(p, timeout=400) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [(r["strategy"], r["replicas"]) for r in results] == [("MultiWorkerMirroredStrategy", 2)] * 2
    assert results[0]["weights_sha256"] == results[1]["weights_sha256"]
    assert results[0]["score"] == results[1]["score"]
    assert results[0]["n_test"] == builder.info.splits["test"].num_examples
    # Only the chief (worker 0) writes the run directory.
    assert json.loads((tmp_path / "mw" / "metrics.json").read_text())["status"] == "ok"


def test_xla_on_cpu_trains_without_op_determinism(shenzhen, tmp_path):
    # XLA has no deterministic MaxPoolGrad: "auto" determinism must step aside for --jit-compile.
    # Its own process: TF cannot switch determinism off once an earlier test enabled it.
    data_dir, _ = shenzhen
    code = (
        "import json; from tfmedbench.train import fit; "
        f"r = fit('TXC', data_dir={data_dir!r}, output_dir={str(tmp_path / 'xla')!r}, "
        f"overrides={dict(TINY, epochs=1)!r}, jit_compile='true', verbose=0); "
        "print(json.dumps(r.metrics['settings']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = json.loads(proc.stdout.strip().splitlines()[-1])
    assert settings["jit_compile"] is True and settings["deterministic"] is False


def test_xla_after_deterministic_run_in_same_process_is_a_clear_error(shenzhen, tmp_path):
    from tfmedbench.errors import UserError

    data_dir, _ = shenzhen
    run(data_dir, tmp_path / "det", epochs=1)
    with pytest.raises(UserError, match="cannot be combined"):
        fit("TXC", data_dir=data_dir, output_dir=str(tmp_path / "x"), overrides=TINY,
            jit_compile="true", verbose=0)


def test_resume_after_a_kill_equals_the_uninterrupted_run(shenzhen, tmp_path):
    import signal
    import time

    data_dir, _ = shenzhen
    args = ["fit", "--task", "TXC", "--data-dir", data_dir, "--epochs", "3", "--image-size",
            "32", "--batch-size", "4", "--set", "resize_size=36", "--set", "depths=1,1,1,1",
            "--set", "width=8", "-q"]  # fmt: skip
    cmd = [sys.executable, "-m", "tfmedbench.cli", *args]
    reference = subprocess.run([*cmd, "--output", str(tmp_path / "ref")], capture_output=True,
                               text=True, timeout=600)  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    state = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "metrics.json").exists()
    done = json.loads(state.read_text())["history"]  # the epochs the killed run finished
    resumed = subprocess.run([*cmd, "--output", str(out), "--resume"], capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # it continued (not restarted): the finished epochs' rows are the killed run's own
    first = list(csv.DictReader(open(out / "history.csv")))[: len(done)]
    assert [float(r["time_s"]) for r in first] == [h["time_s"] for h in done]
    ref_m = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    got_m = json.loads((out / "metrics.json").read_text())
    for key in ("score", "per_class", "epochs_run", "best_epoch", "best_val_loss"):
        assert got_m[key] == ref_m[key], key  # bit for bit
    assert (out / "history.csv").read_text().split("\n")[0] == (tmp_path / "ref" / "history.csv").read_text().split("\n")[0]
    ref_h = list(csv.DictReader(open(tmp_path / "ref" / "history.csv")))
    got_h = list(csv.DictReader(open(out / "history.csv")))
    assert [(r["loss"], r["val_loss"], r["lr"]) for r in got_h] == [
        (r["loss"], r["val_loss"], r["lr"]) for r in ref_h]
    ref_p, got_p = np.load(tmp_path / "ref" / "predictions.npz"), np.load(out / "predictions.npz")
    np.testing.assert_array_equal(got_p["scores"], ref_p["scores"])
    np.testing.assert_array_equal(got_p["image_id"], ref_p["image_id"])


def test_linear_protocol_leaves_the_backbone_untouched(shenzhen, tmp_path):
    from tfmedbench.train import protocol

    data_dir, _ = shenzhen
    result = fit("TXC", data_dir=data_dir, output_dir=str(tmp_path / "lin"), protocol="linear",
                 overrides=TINY, verbose=0)  # fmt: skip
    model = result.model
    frozen = protocol.frozen_layers(model, "linear")
    assert frozen and all(not layer.trainable for layer in frozen)
    assert {w.path.split("/")[0] for w in model.trainable_variables} == {"fc"}
    # the check itself: rebuilding the initial backbone (random init, same seed) gives the same
    # digest as the trained model's backbone, BN statistics included
    from tfmedbench.tasks import get_recipe
    from tfmedbench.train import runtime
    from tfmedbench.train.build import build_model

    runtime.reseed(0)
    initial = build_model(get_recipe("TXC", **TINY))
    assert protocol.digest(protocol.frozen_layers(initial, "linear")) == protocol.digest(frozen)
    with pytest.raises(AssertionError, match="frozen backbone changed"):
        frozen[0].weights[0].assign(frozen[0].weights[0] + 1.0)
        protocol.check_frozen(frozen, protocol.digest(protocol.frozen_layers(initial, "linear")))
    assert result.metrics["protocol"] == "linear"
