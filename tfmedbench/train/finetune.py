"""`fit`: fine-tune one initialization on one task and evaluate it on the test split.

Data flow: RunSpec (validated, weights resolved) -> runtime setup (seeds, strategy, precision)
-> dataset found or built -> run directory claimed -> model + optimizer (+ checkpoint on resume)
-> epoch loop (schedule, early stop, checkpoint each epoch) -> best weights -> test evaluation
-> metrics.json (last: its presence marks a finished run).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfmedbench.data import pipeline, prepare
from tfmedbench.errors import NonFiniteLossError, UserError
from tfmedbench.fileutil import versions
from tfmedbench.train import protocol as protocol_lib
from tfmedbench.train import rundir as rundir_lib
from tfmedbench.train import runtime, schedules
from tfmedbench.train import strategy as strategy_lib
from tfmedbench.train.build import backbone_of, build_model
from tfmedbench.train.evaluate import evaluate
from tfmedbench.train.loop import Trainer
from tfmedbench.train.spec import make_spec


@dataclasses.dataclass
class FitResult:
    run_dir: pathlib.Path
    metrics: dict
    model: object = None  # the trained keras.Model, best-validation weights restored


def log(verbose, *parts):
    if verbose:
        print("[tfmedbench]", *parts, file=sys.stderr, flush=True)


def fit(task, weights="random", *, strategy="auto", tpu=None, precision="auto",
        jit_compile="auto", deterministic="auto", **options):  # fmt: skip
    """Fine-tune `weights` on `task`; returns the run directory and its metrics.

    Options are those of `tfmedbench.train.spec.make_spec` (overrides: recipe fields to change,
    e.g. {"epochs": 2}); the runtime options select the strategy, precision and XLA.
    """
    from tfmedbench.train.spec import make_runtime

    rt = make_runtime(strategy, tpu, precision, jit_compile, deterministic)
    return run(make_spec(task, weights, runtime=rt, **options))


class RunData:
    """The datasets of a run: one per epoch for training, validation and test."""

    def __init__(self, spec, builder, strat, global_batch, keep_ids=None):
        self.spec, self.builder, self.strat = spec, builder, strat
        self.recipe, self.global_batch = spec.recipe, global_batch
        self.keep_ids = keep_ids
        self.readers = {}
        self.n_train = len(keep_ids) if keep_ids is not None else (
            pipeline.num_examples(builder, "train"))  # fmt: skip
        self.steps = pipeline.steps_per_epoch(self.recipe, self.n_train, global_batch)

    def _dist(self, split, epoch, training, augmented=None, index=False):
        if split not in self.readers:
            self.readers[split] = pipeline.reader_for(
                self.recipe, self.builder, split, training=training, seed=self.spec.seed,
                keep_ids=self.keep_ids if split == "train" else None)  # fmt: skip
        ds = pipeline.make_dataset(
            self.recipe, self.builder, split, training=training, batch_size=self.global_batch,
            seed=self.spec.seed, epoch=epoch, augmented=augmented, index=index,
            reader=self.readers[split])  # fmt: skip
        return self.strat.experimental_distribute_dataset(ds)

    def train(self, epoch):
        return self._dist("train", epoch, True)

    def validation(self, epoch):
        return self._dist("validation", epoch, False, augmented=self.recipe.augment_validation)

    def test(self):
        return self._dist("test", 0, False, index=True)


def _check_data(spec, data, settings):
    if data.n_train < 1:
        raise UserError(f"{spec.task}: the training split is empty")
    if settings.replicas > 1 and spec.recipe.drop_last and data.n_train < settings.global_batch:
        raise UserError(
            f"{spec.task}: {data.n_train} training examples are fewer than the global batch "
            f"{settings.global_batch} with drop_last; lower --batch-size"
        )


def _build(spec, strat, settings):
    """Model, optimizer, trainer and the protocol's frozen layers (with their digest)."""
    recipe = spec.recipe
    runtime.reseed(spec.seed)  # initial weights independent of anything drawn before
    with strat.scope():
        model = build_model(recipe, spec.weights_path)
        frozen = protocol_lib.freeze(model, spec.protocol)
        optimizer = keras.optimizers.Adam(
            learning_rate=recipe.lr, beta_1=recipe.beta_1, beta_2=recipe.beta_2,
            epsilon=recipe.adam_epsilon, weight_decay=recipe.weight_decay or None,
        )  # fmt: skip
        if settings.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    trainer = Trainer(strat, model, optimizer, recipe, settings.jit_compile,
                      settings.loss_sync_every)  # fmt: skip
    return trainer, frozen, protocol_lib.digest(frozen)


class EpochLoop:
    """Epochs with the recipe's schedule and early stopping; checkpoints every epoch."""

    def __init__(self, spec, trainer, data, run_dir, writer):
        self.spec, self.recipe, self.trainer, self.data = spec, spec.recipe, trainer, data
        self.run_dir, self.writer = run_dir, writer
        self.plateau = schedules.ReduceOnPlateau(self.recipe.plateau_factor,
                                                 self.recipe.plateau_patience)  # fmt: skip
        self.stopper = schedules.EarlyStopping(self.recipe.patience)
        self.history, self.base_lr, self.global_step, self.epoch = [], self.recipe.lr, 0, 0

    def state(self):
        return {"history": self.history, "base_lr": self.base_lr, "global_step": self.global_step,
                "plateau": self.plateau.state(), "stopper": self.stopper.state()}  # fmt: skip

    def restore(self):
        state = self.run_dir.load_checkpoint(self.trainer.model, self.trainer.optimizer)
        inf = lambda v: math.inf if v is None else v  # noqa: E731 (JSON stores inf as null)
        self.history, self.base_lr = state["history"], state["base_lr"]
        self.global_step, self.epoch = state["global_step"], state["epoch"]
        self.plateau.load(dict(state["plateau"], best=inf(state["plateau"]["best"])))
        self.stopper.load(dict(state["stopper"], best=inf(state["stopper"]["best"])))
        return self.epoch

    def run(self, verbose):
        """Train until the epoch cap or early stop; returns the 1-based best epoch."""
        recipe, total = self.recipe, self.data.steps * self.recipe.epochs
        while self.epoch < recipe.epochs and not self.stopper.should_stop:
            t0, epoch = time.time(), self.epoch
            lr_epoch = schedules.epoch_lr(recipe, epoch, self.base_lr)
            if verbose:
                print(f"Epoch {epoch + 1}/{recipe.epochs}", file=sys.stderr, flush=True)
            bar = keras.utils.Progbar(self.data.steps, verbose=1) if verbose else None
            start = self.global_step
            loss, steps = self.trainer.run_epoch(
                self.data.train(epoch),
                lambda i: schedules.step_lr(recipe, lr_epoch, start + i, total), bar)
            self.global_step += steps
            if not np.isfinite(loss):
                raise NonFiniteLossError(
                    f"non-finite training loss ({loss}) in epoch {epoch + 1}, step {steps}")
            self._end_epoch(epoch, loss, t0, verbose)
        return self.stopper.best_epoch

    def _end_epoch(self, epoch, loss, t0, verbose):
        val_loss = self.trainer.mean_loss(self.data.validation(epoch))
        lr = float(np.asarray(self.trainer.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "loss": loss, "val_loss": val_loss, "lr": lr,
               "time_s": round(time.time() - t0, 3)}  # fmt: skip
        self.history.append(row)
        with self.writer.as_default(step=epoch + 1):
            for key in ("loss", "val_loss", "lr"):
                tf.summary.scalar(key, row[key])
        improved = self.stopper.update(epoch + 1, val_loss)
        if improved:
            self.run_dir.save_weights(self.trainer.model, rundir_lib.BEST_WEIGHTS)
        if self.recipe.schedule == "plateau":
            self.base_lr = self.plateau.step(self.base_lr, val_loss)
        self.epoch = epoch + 1
        self.run_dir.write_history(self.history)
        self.run_dir.save_checkpoint(self.epoch, self.trainer.model, self.trainer.optimizer,
                                     self.state())  # fmt: skip
        log(verbose, f"epoch {epoch + 1}: loss={loss:.4f} val_loss={val_loss:.4f} lr={lr:.3g}"
            + (" (best)" if improved else ""))
        if self.stopper.should_stop:
            log(verbose, f"early stop: no val_loss improvement for {self.stopper.stale} epochs "
                f"(> patience {self.recipe.patience})")


def _config(spec, settings, data):
    return dict(spec.to_config(), settings=dataclasses.asdict(settings), n_train=data.n_train,
                steps_per_epoch=data.steps, versions=versions())  # fmt: skip


def _check_resume(run_dir, config):
    """--resume: the folder's config must describe the same run (settings may differ)."""
    try:
        old = run_dir.read_config()
    except (OSError, ValueError):
        raise UserError(f"{run_dir.path}: no readable config.json to resume from") from None
    keys = ("task", "weights_path", "seed", "recipe", "protocol", "label_fraction", "label_subset",
            "builder")
    diff = [k for k in keys if old.get(k) != rundir_lib._finite(config.get(k))]
    if diff:
        raise UserError(f"{run_dir.path} holds a different run ({', '.join(diff)} differ); "
                        "resume with the same options, or use another --output")  # fmt: skip


def run(spec):
    """Train and evaluate the run `spec` describes; returns FitResult."""
    started = time.time()
    strat, settings = runtime.setup(spec)
    builder = prepare.ensure_built(spec.builder, spec.data_dir, spec.manual_dir,
                                   verbose=bool(spec.verbose), task=spec.task)  # fmt: skip
    keep_ids, subset_notes = _training_subset(spec, builder)
    data = RunData(spec, builder, strat, settings.global_batch, keep_ids)
    _check_data(spec, data, settings)
    settings.input_pipeline = pipeline.describe(spec.recipe, builder, "train")
    log(spec.verbose, settings.line())
    chief = strategy_lib.is_chief()
    path = spec.output_dir or rundir_lib.new_run_dir("runs", spec.task, spec.weights, spec.seed)
    run_dir = rundir_lib.RunDir(path if chief else tempfile.mkdtemp(prefix="tfmedbench-worker-"))
    resuming = spec.resume and run_dir.has_checkpoint()
    run_dir.prepare(resume=spec.resume, overwrite=spec.overwrite)
    config = dict(_config(spec, settings, data), label_subset_notes=subset_notes)
    if resuming:
        _check_resume(run_dir, config)
    run_dir.write_config(config)
    try:
        return _train_and_test(spec, strat, settings, data, run_dir, resuming, started, config)
    except KeyboardInterrupt:
        log(1, f"interrupted; the partial run is in {run_dir.path} (its last finished epoch is "
            f"checkpointed): continue it with the same command plus --resume --output {path}")
        raise
    finally:
        if not chief:
            shutil.rmtree(run_dir.path, ignore_errors=True)


def _training_subset(spec, builder):
    if spec.label_fraction >= 1.0:
        return None, []
    from tfmedbench.data import subsets

    return subsets.training_ids(spec, builder)


def _train_and_test(spec, strat, settings, data, run_dir, resuming, started, config):
    trainer, frozen, frozen_digest = _build(spec, strat, settings)
    writer = tf.summary.create_file_writer(run_dir.tensorboard_dir())
    loop = EpochLoop(spec, trainer, data, run_dir, writer)
    if resuming:
        log(spec.verbose, f"resuming {run_dir.path} after epoch {loop.restore()}")
    try:
        best_epoch = loop.run(spec.verbose)
    except NonFiniteLossError as err:
        run_dir.write_metrics(_failed(spec, loop, started, str(err)))
        raise NonFiniteLossError(f"{err}; run stopped, what was written is kept in "
                                 f"{run_dir.path} (try a lower --lr or --precision float32)") from None
    writer.flush()
    model = trainer.model
    if best_epoch:
        model.load_weights(run_dir.file(rundir_lib.BEST_WEIGHTS))
    protocol_lib.check_frozen(frozen, frozen_digest)
    run_dir.save_weights(backbone_of(model, spec.recipe), rundir_lib.BACKBONE_WEIGHTS)
    ids = pipeline.split_ids(spec.recipe, data.builder, "test")
    test = evaluate(trainer, spec.recipe, data.test(), ids, seed=spec.seed)
    metrics = _metrics(spec, loop, test, started, config)
    run_dir.write_predictions(test["arrays"])
    run_dir.drop_weights(spec.save_weights)
    run_dir.remove_checkpoint()
    run_dir.write_metrics(metrics)
    log(spec.verbose, f"test {spec.recipe.metric} = {test['score']:.4f}; run directory: "
        f"{run_dir.path}")
    return FitResult(pathlib.Path(run_dir.path), metrics, model)


def _metrics(spec, loop, test, started, config):
    return {
        "task": spec.task, "weights": spec.weights, "seed": spec.seed,
        "protocol": spec.protocol, "label_fraction": spec.label_fraction,
        "label_subset": spec.label_subset, "n_train": config["n_train"],
        "label_subset_notes": config["label_subset_notes"],
        "metric": spec.recipe.metric, "score": test["score"], "per_class": test["per_class"],
        "extra": test["extra"], "ci": test["ci"], "epochs_run": len(loop.history),
        "best_epoch": loop.stopper.best_epoch,
        "best_val_loss": loop.stopper.best if math.isfinite(loop.stopper.best) else None,
        "wall_time_s": round(time.time() - started, 2), "settings": config["settings"],
        "versions": config["versions"], "recipe": spec.recipe.to_dict(), "status": "ok",
    }  # fmt: skip


def _failed(spec, loop, started, error):
    return {"task": spec.task, "weights": spec.weights, "seed": spec.seed, "status": "failed",
            "error": error, "epochs_run": len(loop.history),
            "wall_time_s": round(time.time() - started, 2)}  # fmt: skip
