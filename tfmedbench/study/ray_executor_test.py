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


@needs_ray
def test_unreachable_address_is_one_line(ray_env):
    import socket

    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(UserError, match=rf"--address 127\.0\.0\.1:{port}: nothing answers there"):
            ray_executor.connect(make_config(executor="ray", address=f"127.0.0.1:{port}"))


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
        temp = tempfile.mkdtemp(prefix="tfmb-ray-")  # short: Ray's socket paths must fit 107 bytes
        for key, value in dict(RAY_ENV, RAY_TMPDIR=temp).items():
            mp.setenv(key, value)
        import ray
        from ray.cluster_utils import Cluster

        # Cluster writes $RAY_TMPDIR/ray/ray_current_cluster without creating the folder
        os.makedirs(os.path.join(temp, "ray"), exist_ok=True)
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


# A stand-in cell (no training; its worker still imports TF to make the cell's spec),
# importable by the workers: its first attempt kills its own worker process, the second fails
# by itself.
def stand_in_fit(spec):
    marker = spec.output_dir + ".died"
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    raise FloatingPointError("non-finite training loss (nan) in epoch 1")


@pytest.fixture()
def ray_env():
    """RAY_ENV, and Ray's files in a fresh short temp dir whose processes are all stopped after."""
    temp = tempfile.mkdtemp(prefix="tfmb-ray-")  # short: Ray's socket paths must fit 107 bytes
    with pytest.MonkeyPatch.context() as mp:
        for key, value in dict(RAY_ENV, RAY_TMPDIR=temp).items():
            mp.setenv(key, value)
        try:
            yield temp
        finally:
            for proc in _cluster_processes(temp):
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001 - already gone
                    pass
            shutil.rmtree(temp, ignore_errors=True)


@needs_ray
def test_lost_worker_is_retried_and_own_failure_recorded_once(ray_env, tmp_path):
    """Without --address the sweep starts Ray on this machine and stops it at the end. A cell
    whose worker process dies is run again; failing then by itself, it is recorded as failed,
    once, and not retried (bookkeeping only: the stand-in does not train)."""
    import ray

    log = tmp_path / "progress.log"
    config = make_config(executor="ray", tasks=("TXC",), weights=(("random", "random"),), runs=1)
    with open(log, "w") as stream:
        summary = sweep.run_sweep(config, tmp_path / "out", run_fn=stand_in_fit, check_data=False,
                                  stream=stream)  # fmt: skip
    assert not ray.is_initialized()  # the instance it started is stopped
    assert summary == dict(total=1, skipped=0, ran=1, ok=0, failed=1)
    recs = read_records(tmp_path / "out" / "results.jsonl")
    assert len(recs) == 1 and recs[0]["status"] == "failed"  # once
    assert recs[0]["executor"]["attempt"] == 2  # the lost worker's attempt, then this one
    assert recs[0]["error_type"] == "FloatingPointError" and "nan" in recs[0]["error"]
    assert "Traceback" in recs[0]["traceback"]
    text = log.read_text()
    assert f"1 node(s) can run cells, {os.cpu_count()} at once (1 CPU, 0 GPU per run)" in text
    assert "1/1 cells (100%) | 1 failed" in text and "FAILED TXC x random x seed 0" in text


# --------------------------------------------------------------------------- real runs
# Tiny runs; DRIVE's 13-fold expanded training set is cut to the images themselves.
TINY = ["--set", "depths=1,1,1,1", "--set", "width=8", "--set", "test_time=resize", "--set",
        "expansion=1", "--epochs", "1", "--image-size", "32", "--batch-size", "4", "-q"]  # fmt: skip


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


def _tracker_cells(address):
    """{cell key: {"pid", "node_id", "attempts", ...}} from the running driver's cell tracker."""
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


def _wait(condition, what, timeout=TIMEOUT, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stored(store):
    return {record_key(r) for r in read_records(store)}


def _running(address, store):
    """The tracker's entries of cells that run now (started, not yet in the store)."""
    done = _stored(store)
    return {k: e for k, e in _tracker_cells(address).items() if k not in done}


def _training(address, out):
    """A running cell whose fit wrote its config.json but not yet its metrics.json (it trains
    or tests), or None."""
    for key, entry in _running(address, out / "results.jsonl").items():
        cell = dict(zip(("task", "weights", "seed", "protocol", "label_fraction"), key))
        run_dir = config_lib.run_dir_for(str(out), cell)
        if os.path.exists(os.path.join(run_dir, "config.json")) and not os.path.exists(
                os.path.join(run_dir, "metrics.json")):  # fmt: skip
            return key, entry
    return None


def _alive(pid):
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _driver(cmd):
    return subprocess.Popen(cmd, env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=60)


def _local_sweep(root, weights):
    """The 2 tasks x 2 initializations x 2 runs sweep with --executor local (builds the data)."""
    out = root / "local"
    proc = subprocess.run(benchmark_cmd(root, weights, out), env=env(), cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(read_records(out / "results.jsonl")) == 8
    return out


def _ray_sweep(cluster, root, weights):
    """The same sweep with --executor ray on the two-node cluster, through three drivers
    (real kills, from outside; the drivers are stopped right after a record, when the next
    cells have just started, so little training is redone):
    1. SIGKILLed once it stored a record;
    2. interrupted (SIGINT) once it stored another;
    3. finishes the sweep; once one of its cells trains, that cell's worker is SIGKILLed."""
    import ray

    out = root / "ray"
    store = out / "results.jsonl"
    cmd = benchmark_cmd(root, weights, out, "--executor", "ray", "--address", cluster.address)
    seen = {}
    try:
        for name, sig in (("first", signal.SIGKILL), ("second", signal.SIGINT)):
            n = len(read_records(store)) if store.exists() else 0
            proc = _driver(cmd)
            try:
                _wait(lambda: store.exists() and len(read_records(store)) > n, f"a record of the {name} driver",
                      every=0.2)  # fmt: skip
                seen[f"{name}_pids"] = [e["pid"] for e in _running(cluster.address, store).values()]
                proc.send_signal(sig)
                proc.wait(timeout=120)
            finally:
                seen[name] = (proc.poll(), *_stop(proc))
            seen[f"{name}_cells_stopped"] = _wait(lambda: not any(_alive(p) for p in seen[f"{name}_pids"]),
                                                  f"the {name} driver's cells to stop", timeout=60)  # fmt: skip
            seen[f"after_{name}"] = read_records(store)
        third = _driver(cmd)
        try:
            seen["killed_worker"], entry = _wait(lambda: _training(cluster.address, out), "a training cell")
            os.kill(entry["pid"], signal.SIGKILL)
            third.wait(timeout=TIMEOUT)
        finally:
            seen["third"] = (third.poll(), *_stop(third))
    finally:
        ray.shutdown()
    assert seen["third"][0] == 0, seen["third"][2][-3000:]
    return out, seen


def _check_same_results(out, seen, local_reference):
    """Each cell once, run on both nodes, with the local executor's scores bit for bit."""
    recs = read_records(out / "results.jsonl")
    assert len(recs) == 8 and len({record_key(r) for r in recs}) == 8  # each cell once
    assert {r["status"] for r in recs} == {"ok"}
    # same seeds -> the same scores, bit for bit, as the local executor's
    assert scores_of(out / "results.jsonl") == scores_of(local_reference / "results.jsonl")
    assert len({r["executor"]["node_id"] for r in recs}) == 2  # both nodes ran cells
    log = seen["third"][2]
    assert "2 node(s) can run cells, 2 at once" in log and " running (127.0.0.1/" in log
    assert "8/8 cells (100%)" in seen["third"][2]


def _check_killed_worker(out, seen):
    """The cell whose worker was killed ran again (attempt 2) and is in the store once."""
    recs = {record_key(r): r for r in read_records(out / "results.jsonl")}
    killed = seen["killed_worker"]
    assert recs[killed]["executor"]["attempt"] == 2 and recs[killed]["status"] == "ok"
    assert {r["executor"]["attempt"] for k, r in recs.items() if k != killed} == {1}


def _check_killed_driver(out, seen):
    """The same command after a SIGKILLed driver: its running cells were stopped, nothing is
    lost or twice, records are only appended."""
    assert seen["first"][0] == -signal.SIGKILL
    assert seen["first_pids"] and seen["first_cells_stopped"]  # Ray ended the dead driver's tasks
    final = read_records(out / "results.jsonl")
    at_kill = seen["after_first"]
    assert 1 <= len(at_kill) < 8 and final[: len(at_kill)] == at_kill  # only ever appended
    assert len({record_key(r) for r in final}) == len(final) == 8  # no duplicates
    assert f"] {len(at_kill)}/8 cells" in seen["second"][2]  # the next driver skipped them


def _check_interrupt(out, seen):
    """Ctrl-C: the driver exits as aborted and cancels its running cells (workers killed)."""
    code, _, stderr = seen["second"]
    assert code == 130 and "aborted" in stderr, stderr[-2000:]
    assert seen["second_pids"] and seen["second_cells_stopped"]
    at_interrupt = seen["after_second"]
    assert len(at_interrupt) > len(seen["after_first"])
    assert read_records(out / "results.jsonl")[: len(at_interrupt)] == at_interrupt
    assert f"{len(at_interrupt)} already in the store" in seen["third"][1]
    assert f"{8 - len(at_interrupt)} run(s) finished" in seen["third"][1]


@needs_ray
def test_ray_sweep_equals_local_and_survives_kills(cluster, fixture_data):
    """One test (the sweeps are the cost; under pytest-xdist a shared module fixture would run
    once per worker): --executor local, then --executor ray through a killed worker, a killed
    driver and an interrupted driver, and the checks of each."""
    root, weights = fixture_data
    local = _local_sweep(root, weights)
    out, seen = _ray_sweep(cluster, root, weights)
    _check_same_results(out, seen, local)
    _check_killed_worker(out, seen)
    _check_killed_driver(out, seen)
    _check_interrupt(out, seen)
