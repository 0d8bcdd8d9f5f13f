"""`fit`: fine-tune one initialization on one task and evaluate it on the test split."""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfmedbench import metrics as metrics_lib
from tfmedbench.data import pipeline, prepare
from tfmedbench.errors import NonFiniteLossError, UserError
from tfmedbench.models import fused_bn
from tfmedbench.tasks import get_recipe
from tfmedbench.train import rundir, schedules, strategy as strategy_lib
from tfmedbench.train.build import backbone_of, build_model
from tfmedbench.train.loop import Trainer
from tfmedbench.train.weights import resolve_weights_path


# TF offers no public way to turn op determinism off again once enabled in a process.
DETERMINISM_ENABLED = [False]


@dataclasses.dataclass
class FitResult:
    run_dir: pathlib.Path
    metrics: dict
    model: object = None  # the trained keras.Model, best-validation weights restored


@dataclasses.dataclass
class Settings:
    strategy: str
    replicas: int
    device: str
    precision: str
    jit_compile: bool
    deterministic: bool
    global_batch: int
    cache_train: bool
    fused_batchnorm: bool
    loss_sync_every: int
    input_pipeline: str
    seg_augment: str
    threads: str

    def line(self):
        return (
            f"device={self.device} strategy={self.strategy} replicas={self.replicas} "
            f"precision={self.precision} jit_compile={self.jit_compile} "
            f"deterministic={self.deterministic} global_batch={self.global_batch} "
            f"cache_train={self.cache_train} fused_batchnorm={self.fused_batchnorm} "
            f"loss_sync_every={self.loss_sync_every} input={self.input_pipeline} "
            f"seg_augment={self.seg_augment} threads={self.threads}"
        )


def log(verbose, *parts):
    if verbose:
        print("[tfmedbench]", *parts, file=sys.stderr, flush=True)


def fit(
    task,
    weights="random",
    *,
    data_dir=None,
    manual_dir=None,
    output_dir=None,
    seed=0,
    overrides=None,
    strategy="auto",
    tpu=None,
    precision="auto",
    jit_compile="auto",
    deterministic="auto",
    allow_fetch=False,
    weights_format=None,
    verbose=1,
):
    """Fine-tune `weights` on `task`; returns the run directory and its metrics.

    overrides: recipe fields to change (see `tfmedbench.tasks.Recipe`), e.g. {"epochs": 2}.
    weights_format: checkpoint format of a local `weights` file (None: detected from its keys).
    deterministic: "auto" enables TF op determinism on CPU without XLA (bit-identical reruns
      for a seed) and leaves it off on accelerators, where it costs speed.
    """
    started = time.time()
    recipe = get_recipe(task, **(overrides or {}))
    keras.utils.set_random_seed(seed)  # Python, NumPy and TF (the original code set none)
    strat = strategy_lib.make_strategy(strategy, tpu)
    device = strategy_lib.accelerator(strat)
    policy = strategy_lib.resolve_precision(precision, device)
    jit = strategy_lib.resolve_jit(jit_compile, device)
    if deterministic == "auto":
        # XLA has no deterministic MaxPoolGrad, so determinism is only the CPU graph-mode default.
        determinism = device == "cpu" and not jit
    else:
        determinism = bool(deterministic)
    if jit and (determinism or DETERMINISM_ENABLED[0]):
        raise UserError(
            "deterministic ops and --jit-compile true cannot be combined (XLA has no "
            "deterministic max-pool gradient; TF cannot switch determinism off once a run in "
            "this process enabled it): use --jit-compile false, or a fresh process"
        )
    if determinism:
        tf.config.experimental.enable_op_determinism()
        DETERMINISM_ENABLED[0] = True
    strategy_lib.set_precision(policy)

    weights_path = resolve_weights_path(weights, allow_fetch=allow_fetch, fmt=weights_format)
    builder = prepare.ensure_built(
        recipe.builder, data_dir, manual_dir, verbose=bool(verbose), task=recipe.code
    )

    replicas = strat.num_replicas_in_sync
    global_batch = recipe.batch_size * replicas
    n_train = pipeline.num_examples(builder, "train")
    if n_train < global_batch:
        raise UserError(
            f"{recipe.code}: the train split has {n_train} examples, fewer than the global batch "
            f"{global_batch} (= {recipe.batch_size} per replica x {replicas}); lower --batch-size"
        )
    # One training iterator for all epochs where the epoch's batch count is known (no filter):
    # no per-epoch iterator start-up, and the next epoch's first batches are prepared meanwhile.
    train_steps = pipeline.batches_per_epoch(recipe, builder, "train", global_batch)
    settings = Settings(
        strategy=strategy_lib.strategy_name(strat),
        replicas=replicas,
        device=device,
        precision=policy,
        jit_compile=jit,
        deterministic=determinism,
        global_batch=global_batch,
        cache_train=pipeline.should_cache(recipe, builder, "train"),
        fused_batchnorm=fused_bn.ENABLED,
        loss_sync_every=strategy_lib.resolve_loss_sync_every(device),
        input_pipeline=pipeline.describe(recipe, builder, "train")
        + (",one-iterator" if train_steps is not None else ",iterator-per-epoch"),
        seg_augment=recipe.seg_augment if recipe.augmentation == "xray_seg" else "-",
        threads=strategy_lib.describe_threads(),
    )
    log(verbose, settings.line())

    chief = strategy_lib.is_chief()
    run_dir = output_dir or rundir.new_run_dir("runs", recipe.code, weights, seed)
    write_dir = run_dir if chief else tempfile.mkdtemp(prefix="tfmedbench-worker-")
    os.makedirs(write_dir, exist_ok=True)
    config = {
        "task": recipe.code,
        "weights": str(weights),
        "weights_path": weights_path,
        "seed": seed,
        "recipe": recipe.to_dict(),
        "settings": dataclasses.asdict(settings),
        "data_dir": data_dir,
        "versions": rundir.versions(),
    }
    rundir.write_json(os.path.join(write_dir, "config.json"), config)

    def dist(split, training, repeat=False):
        ds = pipeline.make_dataset(
            recipe, builder, split, training=training, batch_size=global_batch, seed=seed,
            repeat=repeat,
        )
        return strat.experimental_distribute_dataset(ds)

    train_ds = dist("train", True, repeat=train_steps is not None)
    train_source = iter(train_ds) if train_steps is not None else train_ds
    val_ds = dist("validation", False)

    with strat.scope():
        model = build_model(recipe, weights_path)
        optimizer = keras.optimizers.Adam(
            learning_rate=recipe.lr,
            beta_1=recipe.beta_1,
            beta_2=recipe.beta_2,
            epsilon=recipe.adam_epsilon,
            weight_decay=recipe.weight_decay or None,
        )
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    trainer = Trainer(
        strat, model, optimizer, recipe, global_batch, jit, settings.loss_sync_every
    )

    history, best = [], {"val_loss": math.inf, "epoch": -1, "weights": None}
    plateau = schedules.ReduceOnPlateau(recipe.plateau_factor, recipe.plateau_patience)
    steps_per_epoch = n_train // global_batch
    total_steps = steps_per_epoch * recipe.epochs
    writer = tf.summary.create_file_writer(os.path.join(write_dir, "tensorboard"))
    base_lr, global_step, stale = recipe.lr, 0, 0
    for epoch in range(recipe.epochs):
        t0 = time.time()
        lr_epoch = schedules.epoch_lr(recipe, epoch, base_lr)
        progbar = keras.utils.Progbar(steps_per_epoch, verbose=1) if verbose else None
        if verbose:
            print(f"Epoch {epoch + 1}/{recipe.epochs}", file=sys.stderr, flush=True)
        start_step = global_step
        loss, steps = trainer.run_epoch(
            train_source,
            lambda i: schedules.step_lr(recipe, lr_epoch, start_step + i, total_steps),
            progbar,
            steps_per_epoch=train_steps,
        )
        global_step += steps
        if not np.isfinite(loss):
            fail_non_finite(write_dir, config, history, epoch, loss, started)
        val_loss = trainer.mean_loss(val_ds)
        row = {
            "epoch": epoch + 1,
            "loss": loss,
            "val_loss": val_loss,
            "lr": float(optimizer.learning_rate.numpy()),
            "time_s": round(time.time() - t0, 3),
        }
        history.append(row)
        with writer.as_default(step=epoch + 1):
            for key in ("loss", "val_loss", "lr"):
                tf.summary.scalar(key, row[key])
        improved = val_loss < best["val_loss"]
        if improved:
            best.update(val_loss=val_loss, epoch=epoch + 1, weights=model.get_weights())
            rundir.atomic_save_weights(model, os.path.join(write_dir, "best.weights.h5"))
            stale = 0
        else:
            stale += 1
        rundir.write_history(os.path.join(write_dir, "history.csv"), history)
        log(verbose, f"epoch {epoch + 1}: loss={loss:.4f} val_loss={val_loss:.4f} lr={row['lr']:.3g}"
            + (" (best)" if improved else ""))
        if recipe.schedule == "plateau":
            base_lr = plateau.step(base_lr, val_loss)
        if stale >= recipe.patience:
            log(verbose, f"early stop: no val_loss improvement for {stale} epochs")
            break
    writer.flush()

    if best["weights"] is not None:
        model.set_weights(best["weights"])
    rundir.atomic_save_weights(backbone_of(model, recipe), os.path.join(write_dir, "backbone.weights.h5"))
    test = evaluate(trainer, recipe, dist("test", False))
    metrics = {
        "task": recipe.code,
        "weights": str(weights),
        "seed": seed,
        "metric": recipe.metric,
        "score": test["score"],
        "per_class": test["per_class"],
        "extra": test["extra"],
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "wall_time_s": round(time.time() - started, 2),
        "settings": dataclasses.asdict(settings),
        "versions": config["versions"],
        "recipe": recipe.to_dict(),
        "status": "ok",
    }
    np.savez_compressed(os.path.join(write_dir, "predictions.npz"), **test["arrays"])
    rundir.write_json(os.path.join(write_dir, "metrics.json"), metrics)
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    log(verbose, f"test {recipe.metric} = {test['score']:.4f}; run directory: {run_dir}")
    return FitResult(pathlib.Path(run_dir), metrics, model)


def evaluate(trainer, recipe, test_ds):
    outputs, targets = trainer.predict(test_ds)
    if recipe.kind == "classification":
        per_class = metrics_lib.per_class_auc(targets, outputs, recipe.labels)
        score = metrics_lib.mean_defined(per_class, recipe.scored)
        undefined = [k for k in recipe.scored if per_class[k] is None]
        extra = {"undefined_classes": undefined, "n_test": int(len(targets))}
        arrays = {"scores": outputs, "labels": targets}
    else:
        per_image_mean, global_dice, per_image = metrics_lib.dice_from_stats(outputs)
        score = per_image_mean
        per_class = {recipe.labels[0]: per_image_mean}
        extra = {
            "dice_global": global_dice,
            "dice_per_image_mean": per_image_mean,
            "empty_mask_rule": metrics_lib.EMPTY_MASK_RULE,
            "n_test": int(len(outputs)),
        }
        arrays = {"dice_stats": outputs, "dice_per_image": per_image}
    return {"score": score, "per_class": per_class, "extra": extra, "arrays": arrays}


def fail_non_finite(write_dir, config, history, epoch, loss, started):
    rundir.write_history(os.path.join(write_dir, "history.csv"), history)
    rundir.write_json(
        os.path.join(write_dir, "metrics.json"),
        {
            "task": config["task"],
            "weights": config["weights"],
            "seed": config["seed"],
            "status": "failed",
            "error": f"non-finite training loss ({loss}) in epoch {epoch + 1}",
            "epochs_run": len(history),
            "wall_time_s": round(time.time() - started, 2),
        },
    )
    raise NonFiniteLossError(
        f"non-finite training loss ({loss}) in epoch {epoch + 1}; run stopped, what was written "
        f"is kept in {write_dir} (try a lower --lr or --precision float32)"
    )
