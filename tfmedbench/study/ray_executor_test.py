"""`benchmark --executor ray` on a real two-node Ray cluster on 127.0.0.1 (one CPU per node):
results equal to the local executor's, a worker killed mid-cell, the driver killed and
interrupted, plus the configuration, packing and preflight checks without a cluster."""

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tfmedbench.errors import UserError
from tfmedbench.study import config as config_lib
from tfmedbench.study import progress as progress_lib
from tfmedbench.study import ray_executor, sweep
from tfmedbench.study.store import read_records, record_key

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed: pip install -e '.[ray]'")
# Ray maps 127.0.0.1 in an address to the machine's outward IP unless told it runs on one host;
# this keeps every process of the test cluster, drivers included, on the loopback interface.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
TIMEOUT = 420  # seconds any one CLI call may take (normally 20-60)


# --------------------------------------------------------------------------- without a cluster
def make_config(**kw):
    base = dict(tasks=("TXC", "VFS"), weights=(("random", "random"), ("a", "/x/a.weights.h5")),
                runs=2, overrides={"epochs": 1}, verbose=0)  # fmt: skip
    base.update(kw)
    return config_lib.SweepConfig(**base)


def test_executor_keys_are_validated_and_not_identity(tmp_path):
    cfg = make_config(executor="ray", address="10.0.0.1:6379", gpus_per_run=0.25, cpus_per_run=4)
    assert cfg.run_resources() == (4.0, 0.25) and make_config(executor="ray").run_resources() == (1.0, 0.0)
    for kw, match in (
        (dict(executor="slurm"), "choose local or ray"),
        (dict(gpus_per_run=0.5), "--gpus-per-run apply to --executor ray"),
        (dict(executor="ray", gpus_per_run=1.5), "a fraction below 1"),
        (dict(executor="ray", gpus_per_run=0.33333), "4 decimals"),
        (dict(executor="ray", cpus_per_run=0), "a number > 0"),
        (dict(executor="ray", gpus_per_run="x"), "a number >= 0"),
        (dict(executor="ray", address="ray://head:10001"), "Ray Client"),
        (dict(executor="ray", address="head"), "HOST:PORT"),
        (dict(executor="ray", address="head:70000"), "HOST:PORT"),
    ):
        with pytest.raises(UserError, match=match):
            make_config(**kw)
    # the same sweep may be continued with another executor: executor keys are not identity
    json_cfg = config_lib.reconcile(tmp_path, cfg)
    config_lib.write_sweep_json(tmp_path, json_cfg)
    assert config_lib.reconcile(tmp_path, make_config())["executor"] == "local"
    from_yaml = config_lib.config_from_mapping(
        {"tasks": "TXC", "weights": "random", "runs": 1, "executor": "ray", "gpus_per_run": 0.5},
        cpus_per_run=2.0)  # fmt: skip
    assert from_yaml.run_resources() == (2.0, 0.5) and from_yaml.address is None


def test_benchmark_cli_rejects_bad_executor_options(tmp_path):
    from click.testing import CliRunner

    from tfmedbench.cli.study import benchmark

    base = ["--tasks", "TXC", "--weights", "random", "--runs", "1"]
    result = CliRunner().invoke(benchmark, [*base, "--output", str(tmp_path), "--gpus-per-run", "0.5"])
    assert isinstance(result.exception, UserError) and "--executor ray" in str(result.exception)
    result = CliRunner().invoke(benchmark, [*base, "--output", "gs://bucket/study", "--executor", "ray"])
    assert isinstance(result.exception, UserError) and "mounted" in str(result.exception)
    assert not os.path.exists("gs:")


def node(node_id, ip, cpu, gpu=0.0, alive=True):
    return {"NodeID": node_id, "NodeManagerAddress": ip, "Alive": alive,
            "Resources": {"CPU": cpu, "GPU": gpu} if gpu else {"CPU": cpu}}  # fmt: skip


def test_packing_arithmetic_and_unschedulable_requests():
    gpu_node = node("a" * 56, "10.0.0.1", 64, 8)
    assert ray_executor.capacity(gpu_node, 2, 0.25) == 32  # 8 GPUs x 4 runs, 64 CPUs / 2
    assert ray_executor.capacity(gpu_node, 4, 0.25) == 16  # CPU-bound
    assert ray_executor.capacity(gpu_node, 1, 1) == 8
    assert ray_executor.capacity(node("b" * 56, "10.0.0.2", 16), 1, 0) == 16
    nodes = [node("c" * 56, "10.0.0.3", 16), gpu_node, node("d" * 56, "10.0.0.4", 16, 8, alive=False)]
    assert ray_executor.fitting_nodes(nodes, 1, 0.5) == [gpu_node]
    with pytest.raises(UserError, match=r"asking for 1 CPU and 2 GPU .*10\.0\.0\.1: 64 CPU 1 GPU"):
        ray_executor.fitting_nodes([node("c" * 56, "10.0.0.1", 64, 1)], 1, 2)
    # two nodes on one IP (a one-machine test cluster) are told apart by their ids
    same = [node("e1" + "0" * 54, "127.0.0.1", 1), node("f2" + "0" * 54, "127.0.0.1", 1)]
    assert [ray_executor.node_label(n, same) for n in same] == ["127.0.0.1/e10000", "127.0.0.1/f20000"]


def test_preflight_reports_name_what_a_node_cannot_see(tmp_path):
    """The probe itself (run here as a node would run it) and the driver's verdicts."""
    out, data = tmp_path / "out", tmp_path / "tfds"
    out.mkdir()
    data.mkdir()
    (out / ".probe").write_text("tok")
    weights = tmp_path / "a.weights.h5"
    weights.write_bytes(b"backbone")
    marks = {"output": str(out / ".probe"), "data_dir": str(data / ".probe")}  # data: not written
    report = ray_executor.probe_node(marks, {"a": str(weights), "gone": str(tmp_path / "no.h5")})
    assert report["seen"]["output"] == "tok" and "cannot read" in report["seen"]["data_dir"]
    assert report["weights"] == {"a": ray_executor.sha256_file(weights), "gone": None}
    nodes = [node("n1" + "0" * 54, "10.0.0.7", 1)]
    here = ray_executor.versions()
    with pytest.raises(UserError, match=r"--data-dir .*tfds is not shared with Ray node\(s\) 10\.0\.0\.7 \(cannot read"):
        ray_executor.check_reports({nodes[0]["NodeID"]: report}, nodes, "tok", str(out), str(data), here)
    report["seen"]["data_dir"] = "tok"
    other = dict(here, tensorflow="2.0.0")
    with pytest.raises(UserError, match=r"10\.0\.0\.7: tensorflow .* vs 2\.0\.0 here"):
        ray_executor.check_reports({nodes[0]["NodeID"]: report}, nodes, "tok", str(out), str(data), other)
    report["seen"]["output"] = "cannot read /x: No such file or directory"
    with pytest.raises(UserError, match=r"--output .* is not shared with Ray node\(s\) 10\.0\.0\.7"):
        ray_executor.check_reports({nodes[0]["NodeID"]: report}, nodes, "tok", str(out), str(data), here)
    # a weights file one node lacks is copied (once) into OUTPUT/weights/, others stay in place
    info = {"a": {"path": str(weights), "sha256": ray_executor.sha256_file(weights)}}
    staged = ray_executor.stage_weights({"n": {"weights": {"a": None}}}, info, str(out))
    assert staged["a"]["path"].startswith(str(out / "weights")) and staged["a"]["sha256"] == info["a"]["sha256"]
    assert open(staged["a"]["path"], "rb").read() == b"backbone"
    assert ray_executor.stage_weights({"n": {"weights": {"a": info["a"]["sha256"]}}}, info, str(out)) == info


def test_progress_line_shows_running_cells_per_node():
    p = progress_lib.Progress(total=10, done=2, stream=open(os.devnull, "w"), slots=2)
    p.running = {"10.0.0.1": 2, "10.0.0.2": 1}
    p.finished("TXC", 40.0, ok=True)
    line = p.line(["TXC"] * 7)
    assert "3/10 cells" in line and "3 running (10.0.0.1: 2, 10.0.0.2: 1)" in line
    assert "ETA 2:20" in line  # 7 cells x 40 s over 2 slots
    p.running = {}
    assert "0 running" in p.line(["TXC"]) and "ETA 0:40" in p.line(["TXC"])  # one cell left: 40 s


# --------------------------------------------------------------------------- the cluster
def _cluster_processes(temp):
    """The processes of the test cluster: those naming its temp dir (GCS, raylets, monitors) and
    all their descendants (workers, whose titles are ray::...)."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(temp in part for part in proc.info["cmdline"] or ()):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return list(found.values())


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node, one CPU each, on 127.0.0.1; everything stopped afterwards."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in RAY_ENV.items():
            mp.setenv(key, value)
        import ray
        from ray.cluster_utils import Cluster

        temp = tempfile.mkdtemp(prefix="tfmb-ray-")  # short: Ray's socket paths must fit 107 bytes
        common = dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=80 << 20)
        started = Cluster(initialize_head=True,
                          head_node_args=dict(common, include_dashboard=False, temp_dir=temp))  # fmt: skip
        try:
            started.add_node(**common)
            started.wait_for_nodes()
            yield started
        finally:
            left = _cluster_processes(temp)
            if ray.is_initialized():
                ray.shutdown()
            started.shutdown()
            for proc in left:  # anything of this cluster still alive
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001 - already gone
                    pass
            shutil.rmtree(temp, ignore_errors=True)


# A stand-in cell (no training; its worker still imports TF to make the cell's spec), importable
# by the workers: the cells of seed 1 fail by themselves; TXC x random x seed 0 kills its own
# worker process on its first attempt.
def stand_in_fit(spec):
    marker = spec.output_dir + ".died"
    if spec.output_dir.endswith(os.path.join("TXC", "random", "seed-0")) and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if spec.seed == 1:
        raise FloatingPointError("non-finite training loss (nan) in epoch 1")
    os.makedirs(spec.output_dir, exist_ok=True)
    return StandInResult({"metric": "auc", "score": 0.5 + spec.seed / 10, "epochs_run": 1})


class StandInResult:
    def __init__(self, metrics):
        self.metrics = metrics


@needs_ray
def test_stand_in_cells_spread_over_both_nodes(cluster, tmp_path):
    """Bookkeeping without TF: each cell once, an own failure recorded and not retried, a lost
    worker retried, both nodes used, running counts on the progress line."""
    log = tmp_path / "progress.log"
    config = make_config(executor="ray", address=cluster.address, tasks=("TXC",),
                         weights=(("random", "random"), ("a", "random")))  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for key, value in RAY_ENV.items():
            mp.setenv(key, value)
        with open(log, "w") as stream:
            summary = sweep.run_sweep(config, tmp_path / "out", run_fn=stand_in_fit, check_data=False,
                                      stream=stream)  # fmt: skip
    assert summary == dict(total=4, skipped=0, ran=4, ok=2, failed=2)
    recs = read_records(tmp_path / "out" / "results.jsonl")
    assert len(recs) == 4 and len({record_key(r) for r in recs}) == 4
    by_key = {(r["task"], r["weights"], r["seed"]): r for r in recs}
    assert by_key[("TXC", "random", 0)]["status"] == "ok"
    assert by_key[("TXC", "random", 0)]["executor"]["attempt"] == 2  # its first worker died
    failed = [r for r in recs if r["status"] == "failed"]
    assert {(r["task"], r["weights"], r["seed"]) for r in failed} == {("TXC", "random", 1), ("TXC", "a", 1)}
    assert all(r["error_type"] == "FloatingPointError" and "nan" in r["error"] for r in failed)
    # an own failure is not retried: every other cell ran exactly once
    others = [r for key, r in by_key.items() if key != ("TXC", "random", 0)]
    assert {r["executor"]["attempt"] for r in others} == {1}
    assert len({r["executor"]["node_id"] for r in recs}) == 2  # both nodes ran cells
    text = log.read_text()
    assert "2 node(s) can run cells, 2 at once" in text and " running (127.0.0.1/" in text
    assert "4/4 cells (100%)" in text and "FAILED TXC x a x seed 1" in text


# --------------------------------------------------------------------------- real runs
TINY = ["--set", "depths=1,1,1,1", "--set", "width=8", "--set", "test_time=resize", "--epochs", "1",
        "--image-size", "32", "--batch-size", "4", "-q"]  # fmt: skip


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    """Tiny Shenzhen and DRIVE raw trees and one tiny backbone weights file."""
    import keras

    from datasets_tfds.drive.fake_data import write_tree as write_drive_tree
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.models import resnet50

    root = tmp_path_factory.mktemp("ray_sweep")
    write_shenzhen_tree(root / "raw_txc", n_images=40, size=64, seed=0)
    write_drive_tree(root / "raw_vfs", n_train=8, n_test=4, seed=0)
    keras.utils.set_random_seed(100)
    weights = root / "tiny_a.weights.h5"
    resnet50(include_top=False, depths=(1, 1, 1, 1), width=8).save_weights(weights)
    return root, weights


def benchmark_cmd(root, weights, out, *extra, tasks="TXC,VFS"):
    return [sys.executable, "-m", "tfmedbench.cli", "benchmark", "--tasks", tasks,
            "--weights", f"random,a={weights}", "--runs", "2", "--baseline", "a",
            "--output", str(out), "--data-dir", str(root / "tfds"),
            "--manual-dir", f"TXC={root / 'raw_txc'}", "--manual-dir", f"VFS={root / 'raw_vfs'}",
            *TINY, *extra]  # fmt: skip


def env():
    e = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", TF_CPP_MIN_LOG_LEVEL="2", **RAY_ENV)
    e["PYTHONPATH"] = REPO + os.pathsep + e.get("PYTHONPATH", "")
    return e


def scores_of(path):
    """What a run computed (status, score, per-class scores, epochs), per cell key."""
    return {
        record_key(r): (r["status"], r.get("score"), json.dumps(r.get("per_class"), sort_keys=True),
                        r.get("epochs_run"), r.get("best_epoch"))  # fmt: skip
        for r in read_records(path)
    }


@pytest.fixture(scope="module")
def local_reference(fixture_data):
    """The 2 tasks x 2 initializations x 2 runs sweep with --executor local (builds the data)."""
    root, weights = fixture_data
    out = root / "local"
    proc = subprocess.run(benchmark_cmd(root, weights, out), env=env(), cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(read_records(out / "results.jsonl")) == 8
    return out


def _tracker_cells(address):
    """{cell key: {"pid", "node_id", "attempts", ...}} of the running sweep's cell tracker."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    cells = {}
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == ray_executor.NAMESPACE and actor["name"].startswith(ray_executor.TRACKER_PREFIX):
            try:
                handle = ray.get_actor(actor["name"], namespace=actor["namespace"])
                cells.update(ray.get(handle.snapshot.remote(), timeout=30))
            except Exception:  # noqa: BLE001 - the tracker of a driver that just ended
                pass
    return cells


def _wait(condition, what, timeout=TIMEOUT, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def ray_sweep_with_a_worker_killed(cluster, fixture_data, local_reference):
    """The same sweep with --executor ray on the two-node cluster; once a cell is training, its
    worker process is SIGKILLed (a real kill, from outside)."""
    import ray

    root, weights = fixture_data
    out = root / "ray"
    proc = subprocess.Popen(benchmark_cmd(root, weights, out, "--executor", "ray", "--address", cluster.address),
                            env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        def training():  # a cell whose fit has written its config.json: it is past setup
            for key, entry in _tracker_cells(cluster.address).items():
                run_dir = config_lib.run_dir_for(str(out), dict(zip(("task", "weights", "seed", "protocol", "label_fraction"), key)))
                if os.path.exists(os.path.join(run_dir, "config.json")):
                    return key, entry
            return None

        key, entry = _wait(training, "a cell to start training", every=0.5)
        os.kill(entry["pid"], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ray.shutdown()
    assert proc.returncode == 0, stderr[-3000:]
    return out, key, stdout, stderr


@needs_ray
def test_ray_sweep_gives_the_local_results(ray_sweep_with_a_worker_killed, local_reference):
    out, _, stdout, stderr = ray_sweep_with_a_worker_killed
    recs = read_records(out / "results.jsonl")
    assert len(recs) == 8 and len({record_key(r) for r in recs}) == 8  # each cell once
    assert {r["status"] for r in recs} == {"ok"}
    # same seeds -> the same scores, bit for bit, as the local executor's
    assert scores_of(out / "results.jsonl") == scores_of(local_reference / "results.jsonl")
    assert len({r["executor"]["node_id"] for r in recs}) == 2  # both nodes ran cells
    assert "8 run(s) finished, 0 failed" in stdout and "8/8 cells (100%)" in stderr
    assert " running (127.0.0.1/" in stderr


@needs_ray
def test_a_killed_worker_is_retried_and_its_cell_recorded_once(ray_sweep_with_a_worker_killed):
    out, killed, _, _ = ray_sweep_with_a_worker_killed
    recs = {record_key(r): r for r in read_records(out / "results.jsonl")}
    assert recs[killed]["executor"]["attempt"] == 2 and recs[killed]["status"] == "ok"
    assert {r["executor"]["attempt"] for k, r in recs.items() if k != killed} == {1}
