"""`benchmark --executor ray`: the sweep's cells as Ray tasks over a cluster.

The driver (the `tfmedbench benchmark` process) keeps everything that must happen once: the
checks of `run_sweep`, the results store (it stays its only writer: each task returns its record
and the driver appends it, fsync'ed, as the local executor does), the datasets (built here, into
a data dir every node reads) and the weights files (resolved and converted here; copied into
OUTPUT/weights/ when some node cannot read them where they are). Before anything is built the
driver checks, with one probe task per node, that every node sees --output and --data-dir at the
same paths and runs the same tfmedbench / TensorFlow / Keras.

Each cell is one Ray task asking for `cpus_per_run` CPUs and `gpus_per_run` GPUs, in a fresh
worker process (`max_calls=1`): TF state (op determinism, Keras' session, GPU memory) never
leaks from one cell into the next, and a run sees only the GPUs Ray gave it
(CUDA_VISIBLE_DEVICES). With a fraction of a GPU per run TF's memory growth is switched on in
the task's process before TF touches the GPU, so runs packed onto one GPU allocate on demand.

Faults: a task whose worker or node is lost is run again by Ray (`max_retries`, system failures
only) and resumes from its run folder's last checkpointed epoch; a cell that fails by itself is
caught in the task and recorded as failed (`run_cell`), never retried; a driver killed and
started again skips the stored cells and queues the rest; Ctrl-C cancels the running tasks.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import socket
import sys
import time
import traceback

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file, versions
from tfmedbench.study import cells as cells_lib
from tfmedbench.study import config as config_lib
from tfmedbench.study.store import record_key

# Attempts after the first when a task's worker process or node is lost (Ray's `max_retries`
# counts system failures only; `retry_exceptions=False`). Bounded: a cell that kills its worker
# every time (e.g. out of memory) is recorded as failed after 3 attempts.
SYSTEM_RETRIES = 2
POLL_S = 2.0  # how often the driver refreshes the running counts
PROBE_TIMEOUT_S = 600  # probe tasks start a worker per node and hash the weights files
NAMESPACE = "tfmedbench"
TRACKER_PREFIX = "tfmedbench-cells-"
COMPARED_VERSIONS = ("tfmedbench", "tensorflow", "keras")


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'tfmedbench[ray]'") from None
    return ray


# --------------------------------------------------------------------------- the driver
def run(config, output_dir, cells, store, progress, summary, weights_info, recipes, run_fn=None):
    """Run `cells` on Ray and append their records to `store`; fills `summary` like the local
    loop. recipes: {task: recipe} to build the datasets (None: no data checks, for tests)."""
    if not cells:
        progress.show([])
        return summary
    ray, started_here = connect(config)
    try:
        cpus, gpus = config.run_resources()
        nodes = fitting_nodes(ray.nodes(), cpus, gpus)
        data_dir = _data_dir(config) if recipes is not None else None
        weights_info = preflight(ray, nodes, output_dir, data_dir, weights_info)
        if recipes is not None:
            cells_lib.build_data(config, {c["task"]: recipes[c["task"]] for c in cells})
        # Workers read the datasets the driver built; without a manual dir they can never build
        # one themselves (at the same time as another worker).
        worker_config = dataclasses.replace(config, manual_dir={}, data_dir=data_dir or config.data_dir)
        progress.slots = sum(capacity(n, cpus, gpus) for n in nodes)
        print(f"[benchmark] Ray: {len(nodes)} node(s) can run cells, {progress.slots} at once "
              f"({cpus:g} CPU, {gpus:g} GPU per run)", file=progress.stream, flush=True)  # fmt: skip
        Driver(ray, worker_config, output_dir, store, progress, summary).run(
            cells, weights_info, run_fn)  # fmt: skip
    finally:
        if started_here:
            ray.shutdown()
    return summary


def connect(config):
    """(ray, started_here): join the cluster at --address, or start a Ray instance on this
    machine when none is given (stopped at the end)."""
    ray = import_ray()
    if ray.is_initialized():  # an embedding program (or a test) connected already
        return ray, False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    # Worker output (Keras progress, logs) stays in Ray's per-node worker logs: with dozens of
    # cells at once it would drown the progress line; each run also writes its own folder.
    kwargs = dict(log_to_driver=False, include_dashboard=False, logging_level="WARNING")
    if config.address is None:
        ray.init(**kwargs)
        return ray, True
    if config.address != "auto":
        _check_reachable(config.address)
    kwargs.pop("include_dashboard")  # a setting of the cluster, not of a driver joining it
    try:
        ray.init(address=config.address, **kwargs)
    except ConnectionError as err:
        raise UserError(f"--address {config.address}: no Ray cluster found "
                        f"({str(err).splitlines()[0]}); start one with `ray start --head` "
                        "or give its head's HOST:PORT") from None  # fmt: skip
    return ray, True


def _check_reachable(address, timeout=10):
    """Ray retries an unreachable GCS for minutes; a refused TCP connect says it in seconds."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise UserError(f"--address {address}: nothing answers there ({err.strerror or err}); "
                        "start the head with `ray start --head --port PORT` first") from None  # fmt: skip


def capacity(node, cpus, gpus):
    """How many cells `node` (an entry of ray.nodes()) runs at once."""
    res = node.get("Resources", {})
    # Ray counts resources in units of 1e-4: 4 x 0.25 fits exactly, so round before the floor.
    fits = [int(round(res.get("CPU", 0.0) / cpus, 6))] if cpus else []
    if gpus:
        fits.append(int(round(res.get("GPU", 0.0) / gpus, 6)))
    return max(0, min(fits)) if fits else 0


def fitting_nodes(nodes, cpus, gpus):
    """The alive nodes that can run a cell; none -> a one-line error naming what is missing."""
    alive = [n for n in nodes if n.get("Alive")]
    fitting = [n for n in alive if capacity(n, cpus, gpus) >= 1]
    if not fitting:
        have = ", ".join(f"{node_label(n, alive)}: {n['Resources'].get('CPU', 0):g} CPU "
                         f"{n['Resources'].get('GPU', 0):g} GPU" for n in alive)  # fmt: skip
        raise UserError(f"no node of the Ray cluster can run a cell asking for {cpus:g} CPU and "
                        f"{gpus:g} GPU ({have or 'no nodes'}); lower --cpus-per-run / "
                        "--gpus-per-run or add nodes")  # fmt: skip
    return fitting


def node_label(node, nodes):
    """A node's IP, or IP/short id where several nodes share one IP (a one-machine cluster)."""
    ip = node.get("NodeManagerAddress", "?")
    shared = sum(1 for n in nodes if n.get("NodeManagerAddress") == ip) > 1
    return f"{ip}/{node['NodeID'][:6]}" if shared else ip


def _data_dir(config):
    from tfmedbench.data.prepare import default_data_dir

    data_dir = config.data_dir or default_data_dir()
    # A gs:// data dir goes to TF's file system as given (every node reads the same bucket).
    return data_dir if "://" in data_dir else os.path.abspath(os.path.expanduser(data_dir))


# --------------------------------------------------------------------------- preflight
def preflight(ray, nodes, output_dir, data_dir, weights_info):
    """Check what every node sees, once, before anything is built; returns weights_info with
    each file a node cannot read (or reads different) replaced by its copy in OUTPUT/weights/."""
    token = secrets.token_hex(16)
    marks = {"output": os.path.join(output_dir, f".ray-probe-{token}")}
    if data_dir and "://" not in data_dir:
        marks["data_dir"] = os.path.join(data_dir, f".tfmedbench-ray-probe-{token}")
    weights = {label: info["path"] for label, info in (weights_info or {}).items()}
    try:
        for path in marks.values():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                fh.write(token)
        probe = ray.remote(num_cpus=0, max_retries=0)(probe_node)
        refs = {n["NodeID"]: probe.options(scheduling_strategy=_on_node(ray, n["NodeID"])).remote(
                    marks, weights) for n in nodes}  # fmt: skip
        reports = {}
        for node_id, ref in refs.items():
            try:
                reports[node_id] = ray.get(ref, timeout=PROBE_TIMEOUT_S)
            except Exception as err:  # noqa: BLE001 - any failure of the probe is the node's
                reports[node_id] = {"error": _first_line(getattr(err, "cause", None) or err)}
    finally:
        for path in marks.values():
            try:
                os.remove(path)
            except OSError:
                pass
    check_reports(reports, nodes, token, output_dir, data_dir, versions())
    return stage_weights(reports, weights_info, output_dir)


def _on_node(ray, node_id):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def probe_node(marks, weights):
    """Runs on one node: the tokens it reads back, its versions, the digests of the weights."""
    seen = {}
    for name, path in marks.items():
        try:
            with open(path) as fh:
                seen[name] = fh.read()
        except OSError as err:
            seen[name] = f"cannot read {path}: {err.strerror or err}"
    digests = {}
    for label, path in weights.items():
        digests[label] = sha256_file(path) if os.path.isfile(path) else None
    return {"seen": seen, "versions": versions(), "weights": digests, "pid": os.getpid()}


def check_reports(reports, nodes, token, output_dir, data_dir, driver_versions):
    """One-line UserError for the first kind of problem any node has."""
    names = {n["NodeID"]: node_label(n, nodes) for n in nodes}
    bad = {"error": [], "output": [], "data_dir": [], "versions": []}
    for node_id, report in reports.items():
        label = names.get(node_id, node_id[:6])
        if "error" in report:
            bad["error"].append(f"{label}: {report['error']}")
            continue
        for name in ("output", "data_dir"):
            if name in report["seen"] and report["seen"][name] != token:
                bad[name].append(f"{label} ({report['seen'][name]})")
        diff = [f"{k} {report['versions'].get(k)} vs {driver_versions.get(k)} here"
                for k in COMPARED_VERSIONS if report["versions"].get(k) != driver_versions.get(k)]
        if diff:
            bad["versions"].append(f"{label}: {', '.join(diff)}")
    if bad["error"]:
        raise UserError(f"the check task failed on Ray node(s) {'; '.join(bad['error'])}: every "
                        "node needs tfmedbench installed in the Python that runs Ray")  # fmt: skip
    for name, flag in (("output", "--output"), ("data_dir", "--data-dir")):
        if bad[name]:
            where = output_dir if name == "output" else data_dir
            raise UserError(f"{flag} {where} is not shared with Ray node(s) {', '.join(bad[name])}: "
                            f"every node must read and write it at the same path; put {flag} on "
                            "a file system mounted on every node (NFS, Lustre, a mounted bucket)")  # fmt: skip
    if bad["versions"]:
        raise UserError(f"Ray node(s) run other versions ({'; '.join(bad['versions'])}); results "
                        "would not be comparable: install the same environment on every node")  # fmt: skip


def stage_weights(reports, weights_info, output_dir):
    """Copy each weights file some node lacks (or holds different) into OUTPUT/weights/."""
    out = {}
    for label, info in (weights_info or {}).items():
        seen = [r["weights"].get(label) for r in reports.values()]
        if all(s == info["sha256"] for s in seen):
            out[label] = info
            continue
        dest = os.path.join(output_dir, "weights", f"{label}-{info['sha256'][:12]}.weights.h5")
        if not (os.path.isfile(dest) and sha256_file(dest) == info["sha256"]):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = f"{dest}.tmp{os.getpid()}"
            shutil.copyfile(info["path"], tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        print(f"[benchmark] weights {label!r}: not readable on every node; copied to {dest}",
              file=sys.stderr, flush=True)  # fmt: skip
        out[label] = dict(info, path=dest)
    return out


# --------------------------------------------------------------------------- the cells
class CellTracker:
    """Which cell runs where, and its attempt number (a Ray actor beside the driver): the
    progress line's running counts; tests find a cell's worker process here."""

    def __init__(self):
        self.cells = {}

    def started(self, key, node_id, pid):
        entry = self.cells.setdefault(key, {"attempts": 0, "first_start": time.time()})
        entry.update(attempts=entry["attempts"] + 1, node_id=node_id, pid=pid, start=time.time())
        return entry["attempts"]

    def snapshot(self):
        return dict(self.cells)


def cell_task(config, output_dir, cell, weights_info, run_fn, tracker, memory_growth):
    """One cell, in a fresh worker process; returns its store record (failed ones included)."""
    import ray

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # as the CLI sets for itself
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    node_id = ray.get_runtime_context().get_node_id()
    try:
        attempt = ray.get(tracker.started.remote(record_key(cell), node_id, os.getpid()), timeout=60)
    except Exception:  # noqa: BLE001 - the tracker only feeds the progress line
        attempt = None
    if memory_growth:
        _memory_growth()
    record = cells_lib.run_cell(config, output_dir, cell, run_fn or cells_lib.default_run(),
                                weights_info)
    record["executor"] = {
        "name": "ray", "node_ip": ray.util.get_node_ip_address(), "node_id": node_id,
        "attempt": attempt, "cpus": config.run_resources()[0], "gpus": config.run_resources()[1],
        "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "gpu_memory_growth": memory_growth,
    }  # fmt: skip
    return record


def _memory_growth():
    """Runs packed onto one GPU: TF allocates GPU memory as needed instead of ~all of it. Must
    run before TF initializes the GPU, i.e. before the cell builds anything."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    print(f"[tfmedbench] GPU memory growth on for {len(gpus)} GPU(s): runs share a GPU",
          file=sys.stderr, flush=True)  # fmt: skip


def _first_line(err):
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300] if text else repr(err)}"


class Driver:
    """Submits the cells, commits each returned record to the store, shows the progress."""

    def __init__(self, ray, config, output_dir, store, progress, summary):
        self.ray, self.config, self.output_dir = ray, config, output_dir
        self.store, self.progress, self.summary = store, progress, summary
        self.pending = {}  # ObjectRef -> cell
        self.labels = {}  # node id -> label
        self.tracker = None

    def run(self, cells, weights_info, run_fn):
        self._start_tracker()
        cpus, gpus = self.config.run_resources()
        task = self.ray.remote(max_calls=1, max_retries=SYSTEM_RETRIES, retry_exceptions=False,
                               num_cpus=cpus, num_gpus=gpus)(cell_task)  # fmt: skip
        growth = 0 < gpus < 1
        try:
            for cell in cells:
                ref = task.options(name=f"tfmedbench {cells_lib.label(cell)}").remote(
                    self.config, self.output_dir, cell, weights_info.get(cell["weights"]), run_fn,
                    self.tracker, growth)  # fmt: skip
                self.pending[ref] = cell
            self._show()
            while self.pending:
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
                if ready:  # collect every other finished one too
                    ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending),
                                             timeout=0)  # fmt: skip
                for ref in ready:
                    cell = self.pending.pop(ref)
                    record = self._result(ref, cell)
                    self.store.append(record)  # the one writer: fsync'ed before the next
                    cells_lib.count(self.summary, self.progress, record, cells_lib.label(cell))
                self._show(force=bool(ready))
        except BaseException:  # Ctrl-C (or an error here): stop what still runs
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
            raise
        self.progress.running = None
        self.progress.show([])

    def _start_tracker(self):
        node = self.ray.get_runtime_context().get_node_id()
        self.tracker = (
            self.ray.remote(num_cpus=0, max_restarts=0)(CellTracker)
            .options(name=f"{TRACKER_PREFIX}{os.getpid()}-{secrets.token_hex(3)}",
                     namespace=NAMESPACE, scheduling_strategy=_on_node(self.ray, node))
            .remote()
        )  # fmt: skip

    def _result(self, ref, cell):
        """The task's record; a lost worker (after the retries) or an error outside the cell's
        own code becomes a failed record of that cell."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:  # raised in the task, outside run_cell
            cause = err.cause if isinstance(getattr(err, "cause", None), BaseException) else err
            return self._failed(cell, cause, traceback_text=str(err))
        except ray.exceptions.RayError as err:  # worker or node lost SYSTEM_RETRIES + 1 times
            return self._failed(cell, err, lost=True)

    def _failed(self, cell, err, lost=False, traceback_text=None):
        run_dir = config_lib.run_dir_for(self.output_dir, cell)
        first = _first_line(err).split(": ", 1)[1]
        if lost:
            first = f"its Ray worker was lost on each of {SYSTEM_RETRIES + 1} attempts ({first})"
        started = self._snapshot().get(record_key(cell), {}).get("first_start")
        return dict(
            task=cell["task"], weights=cell["weights"], seed=cell["seed"], run=cell["run"],
            protocol=cell["protocol"], label_fraction=cell["label_fraction"],
            weights_spec=self.config.spec(cell["weights"]),
            run_dir=os.path.relpath(run_dir, self.output_dir), status="failed",
            error_type=type(err).__name__, error=first,
            traceback=(traceback_text or "".join(traceback.format_exception(err)))[-4000:],
            wall_time_s=None if started is None else time.time() - started, versions=versions(),
            executor={"name": "ray", "lost": lost},
        )  # fmt: skip

    def _snapshot(self):
        try:
            return self.ray.get(self.tracker.snapshot.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - progress only
            return {}

    def _show(self, force=False):
        """Print the progress line when a cell finished or the running counts changed."""
        keys = {record_key(c) for c in self.pending.values()}
        running = {}
        for key, entry in self._snapshot().items():
            if key in keys:
                label = self._node_label(entry["node_id"])
                running[label] = running.get(label, 0) + 1
        if force or running != self.progress.running:
            self.progress.running = running
            self.progress.show([c["task"] for c in self.pending.values()])

    def _node_label(self, node_id):
        if node_id not in self.labels:
            nodes = self.ray.nodes()
            self.labels = {n["NodeID"]: node_label(n, nodes) for n in nodes}
        return self.labels.get(node_id, node_id[:6])
