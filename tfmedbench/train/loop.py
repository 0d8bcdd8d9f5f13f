"""One custom training loop for every strategy (CPU, Mirrored, MultiWorker, TPU).

Why not `model.fit`: under MultiWorkerMirroredStrategy Keras 3.15's fit fails with a PerReplica
conversion error (keras-team/keras#20585), while `strategy.run` with the same Keras model and
optimizer works. One loop for all strategies keeps behaviour identical across them.

Losses are those of the whole *global* batch, as the original computes them on its one batch:
BCE is the mean over every pixel/label of the batch; soft Dice (smooth 1) is one Dice over all
pixels of the batch (the original's `torch_dice_coef_loss` flattens the batch). Each replica
differentiates a surrogate whose gradients, summed across replicas by the optimizer, equal the
gradient of that global loss exactly -- so neither the loss nor the update depends on how a
batch is split over replicas, and a partial last batch (the original's DataLoader keeps it)
is averaged over the examples it really has, even when a replica receives none.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfmedbench import metrics as metrics_lib

SUM = tf.distribute.ReduceOp.SUM


def _all_sum(value):
    return tf.distribute.get_replica_context().all_reduce(SUM, value)


def global_batch_loss(loss, target, pred):
    """(loss of the global batch, this replica's surrogate to differentiate), in replica context."""
    pred = tf.cast(pred, tf.float32)
    target = tf.cast(target, tf.float32)
    if loss == "bce":
        eps = keras.backend.epsilon()
        # clip_by_value maps NaN into [eps, 1 - eps] (min/max drop NaN): keep NaN a NaN, so a
        # diverged model stops the run instead of training on a finite loss.
        p = tf.where(tf.math.is_nan(pred), pred, tf.clip_by_value(pred, eps, 1 - eps))
        bce = -(target * tf.math.log(p) + (1 - target) * tf.math.log(1 - p))
        count = tf.stop_gradient(_all_sum(tf.cast(tf.size(bce), tf.float32)))
        surrogate = tf.reduce_sum(bce) / tf.maximum(count, 1.0)
        return tf.stop_gradient(_all_sum(surrogate)), surrogate
    if loss == "dice":
        inter, denom = tf.reduce_sum(pred * target), tf.reduce_sum(pred) + tf.reduce_sum(target)
        total_i = tf.stop_gradient(_all_sum(inter))
        total_d = tf.stop_gradient(_all_sum(denom)) + 1.0
        value = 1.0 - (2.0 * total_i + 1.0) / total_d
        # d(value) = -2 d(I) / D + (2 I + 1) d(D) / D^2, with I, D summed over replicas.
        surrogate = -2.0 * inter / total_d + (2.0 * total_i + 1.0) * denom / total_d**2
        return value, surrogate
    raise ValueError(f"unknown loss {loss!r}")


class Trainer:
    """Compiled distributed steps for one model; Python drives epochs, schedules and stopping."""

    def __init__(self, strategy, model, optimizer, recipe, jit_compile=False, loss_sync_every=1,
                 variables=None):  # fmt: skip
        self.strategy = strategy
        # Read the loss back to the host every N steps, not every step: on an accelerator each
        # read waits for the step to finish, so Python cannot queue the next one meanwhile.
        self.loss_sync_every = max(1, int(loss_sync_every))
        self.model, self.optimizer, self.recipe = model, optimizer, recipe
        self.jit_compile = jit_compile
        # The variables the protocol trains (all trainable ones for fine-tuning).
        self.variables = list(variables if variables is not None else model.trainable_variables)
        self.train_step = self.build_train_step()
        self.loss_step = self.build_loss_step()
        self.predict_step = self.build_predict_step()
        self.sync_step = self.build_sync_step()

    def build_train_step(self):
        model, opt, recipe, variables = self.model, self.optimizer, self.recipe, self.variables
        scaled = isinstance(opt, keras.optimizers.LossScaleOptimizer)

        @tf.function(jit_compile=self.jit_compile)
        def replica_step(images, targets):
            with tf.GradientTape() as tape:
                pred = model(images, training=True)
                value, surrogate = global_batch_loss(recipe.loss, targets, pred)
                to_differentiate = opt.scale_loss(surrogate) if scaled else surrogate
            grads = tape.gradient(to_differentiate, variables)
            opt.apply_gradients(zip(grads, variables))
            return value, tf.cast(tf.shape(images)[0], tf.float32)

        return self._global_step(replica_step)

    def _global_step(self, replica_fn):
        """One distributed step of `replica_fn` -> (the global loss, the global example count)."""

        @tf.function(reduce_retracing=True)  # the last partial batch has another size
        def step(batch):
            value, count = self.strategy.run(replica_fn, args=batch)
            # Every replica holds the same global value; counts add up to the global batch.
            return (self.strategy.experimental_local_results(value)[0],
                    self.strategy.reduce(SUM, count, axis=None))  # fmt: skip

        return step

    def build_loss_step(self):
        model, recipe = self.model, self.recipe

        def replica(images, targets, *index):
            value, _ = global_batch_loss(recipe.loss, targets, model(images, training=False))
            return value, tf.cast(tf.shape(images)[0], tf.float32)

        return self._global_step(replica)

    def build_predict_step(self):
        model, recipe = self.model, self.recipe

        def replica(images, targets, index):
            if images.shape.rank == 5:  # TenCrop: [B, 10, S, S, C] -> mean of the crops' outputs
                b, n = tf.shape(images)[0], tf.shape(images)[1]
                flat = tf.reshape(images, tf.concat([[b * n], tf.shape(images)[2:]], 0))
                pred = tf.cast(model(flat, training=False), tf.float32)
                pred = tf.reduce_mean(tf.reshape(pred, [b, n, -1]), axis=1)
            else:
                pred = tf.cast(model(images, training=False), tf.float32)
            if recipe.kind == "segmentation":
                return dice_stats_tf(pred, targets), tf.zeros([tf.shape(pred)[0], 0]), index
            return pred, tf.cast(targets, tf.float32), index

        @tf.function(reduce_retracing=True)  # the last partial batch has another size
        def step(batch):
            outs = self.strategy.run(replica, args=batch)
            return tuple(self.strategy.gather(o, axis=0) for o in outs)

        return step

    def build_sync_step(self):
        """Average BatchNorm moving statistics over all replicas.

        Keras keeps the first replica's moving statistics on each worker (like PyTorch
        DataParallel); across workers those differ, so multi-worker evaluation and the saved
        weights would depend on the worker. Averaging them once per epoch makes every worker
        hold identical weights. Training is unaffected (it normalises with batch statistics).
        """
        variables = list(self.model.non_trainable_variables)
        sizes = [int(np.prod(v.shape)) for v in variables]

        def replica():
            # One flat tensor: a single collective instead of one per variable.
            flat = tf.concat([tf.reshape(tf.identity(v.value), [-1]) for v in variables], 0)
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, flat)

        @tf.function
        def step():
            averaged = self.strategy.experimental_local_results(self.strategy.run(replica))[0]
            # Assign in cross-replica context: every local copy gets the all-reduced value.
            for variable, value in zip(variables, tf.split(averaged, sizes)):
                variable.assign(tf.reshape(value, variable.shape))

        return step

    def sync_statistics(self):
        if self.strategy.num_replicas_in_sync > 1 and self.model.non_trainable_variables:
            self.sync_step()

    def run_epoch(self, dist_dataset, lr_fn, progbar=None):
        """Train one epoch; returns (loss, steps): the loss averaged over examples (each batch's
        loss weighted by its size, as the original's meter), lr_fn(step) -> learning rate.

        A non-finite loss ends the epoch at the first sync point after it: (that loss, steps up
        to and including its step).
        """
        meter = _Meter(progbar)
        for batch in dist_dataset:
            self.optimizer.learning_rate.assign(lr_fn(meter.steps))
            meter.add(*self.train_step(batch))
            if len(meter.pending) >= self.loss_sync_every and (bad := meter.drain()):
                return bad
        if bad := meter.drain():
            return bad
        self.sync_statistics()
        return meter.mean(), meter.steps

    def mean_loss(self, dist_dataset):
        """Validation loss: each batch's global loss weighted by its size (the original's meter)."""
        meter = _Meter()
        for batch in dist_dataset:
            meter.add(*self.loss_step(batch))
        meter.drain()
        return meter.mean()

    def predict(self, dist_dataset):
        """Gathered (outputs, targets, index) over the whole split, in numpy."""
        parts = [[], [], []]
        for batch in dist_dataset:
            for part, value in zip(parts, self.predict_step(batch)):
                part.append(value.numpy())
        return tuple(np.concatenate(p) for p in parts)


class _Meter:
    """Size-weighted running loss, read back from the device in groups of steps."""

    def __init__(self, progbar=None):
        self.progbar, self.pending = progbar, []
        self.total, self.count, self.steps = 0.0, 0.0, 0

    def add(self, value, count):
        self.pending.append((value, count))
        self.steps += 1

    def drain(self):
        """Read pending losses; (bad loss, its step) at the first non-finite one, else None."""
        values = [(float(v), float(n)) for v, n in self.pending]
        first = self.steps - len(values)
        self.pending.clear()
        for i, (value, n) in enumerate(values):
            if not np.isfinite(value):
                return value, first + i + 1
            self.total += value * n
            self.count += n
        if self.progbar is not None and values:
            self.progbar.update(self.steps, [("loss", float(np.mean([v for v, _ in values])))])
        return None

    def mean(self):
        return self.total / self.count if self.count else float("nan")


def dice_stats_tf(pred, target, threshold=metrics_lib.DICE_THRESHOLD):
    """Per-image (intersection, predicted positives, target positives): exact Dice inputs.

    With a second target channel (the DRIVE field of view) the same three sums inside it follow:
    [B, 6] instead of [B, 3].
    """
    b = tf.shape(pred)[0]
    p = tf.cast(tf.reshape(pred[..., :1], [b, -1]) > threshold, tf.float32)
    t = tf.cast(tf.reshape(target[..., :1], [b, -1]) > 0.5, tf.float32)

    def sums(p, t):
        return [tf.reduce_sum(p * t, 1), tf.reduce_sum(p, 1), tf.reduce_sum(t, 1)]

    out = sums(p, t)
    if target.shape[-1] == 2:
        region = tf.cast(tf.reshape(target[..., 1:], [b, -1]) > 0.5, tf.float32)
        out += sums(p * region, t * region)
    return tf.stack(out, axis=1)
