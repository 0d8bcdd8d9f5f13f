"""One custom training loop for every strategy (CPU, Mirrored, MultiWorker, TPU).

Why not `model.fit`: under MultiWorkerMirroredStrategy Keras 3.15's fit fails with a PerReplica
conversion error (keras-team/keras#20585), while `strategy.run` with the same Keras model and
optimizer works. One loop for all strategies keeps behaviour identical across them.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import tensorflow as tf

from tfmedbench import metrics as metrics_lib


def per_example_loss(kind, loss, target, pred):
    """Loss per example, float32, shape [B]."""
    pred = tf.cast(pred, tf.float32)
    target = tf.cast(target, tf.float32)
    if loss == "bce":
        eps = keras.backend.epsilon()
        p = tf.clip_by_value(pred, eps, 1 - eps)
        bce = -(target * tf.math.log(p) + (1 - target) * tf.math.log(1 - p))
        return tf.reduce_mean(tf.reshape(bce, [tf.shape(bce)[0], -1]), axis=1)
    if loss == "dice":
        # Soft Dice per image (smooth 1), so the loss does not depend on how a batch is sharded.
        b = tf.shape(pred)[0]
        p = tf.reshape(pred, [b, -1])
        t = tf.reshape(target, [b, -1])
        inter = tf.reduce_sum(p * t, axis=1)
        return 1.0 - (2.0 * inter + 1.0) / (tf.reduce_sum(p, 1) + tf.reduce_sum(t, 1) + 1.0)
    raise ValueError(f"unknown loss {loss!r}")


class Trainer:
    """Compiled distributed steps for one model; Python drives epochs, schedules and stopping."""

    def __init__(
        self, strategy, model, optimizer, recipe, global_batch, jit_compile, loss_sync_every=1
    ):
        self.strategy = strategy
        # Read the loss back to the host every N steps, not every step: on an accelerator each
        # read waits for the step to finish, so Python cannot queue the next one meanwhile.
        self.loss_sync_every = max(1, int(loss_sync_every))
        self.model = model
        self.optimizer = optimizer
        self.recipe = recipe
        self.global_batch = global_batch
        self.jit_compile = jit_compile
        self.train_step = self.build_train_step()
        self.loss_step = self.build_loss_step()
        self.predict_step = self.build_predict_step()
        self.sync_step = self.build_sync_step()

    def build_train_step(self):
        model, opt, recipe = self.model, self.optimizer, self.recipe
        global_batch = self.global_batch
        scaled = isinstance(opt, keras.optimizers.LossScaleOptimizer)

        @tf.function(jit_compile=self.jit_compile)
        def replica_step(images, targets):
            with tf.GradientTape() as tape:
                pred = model(images, training=True)
                losses = per_example_loss(recipe.kind, recipe.loss, targets, pred)
                loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
                to_differentiate = opt.scale_loss(loss) if scaled else loss
            variables = model.trainable_variables
            grads = tape.gradient(to_differentiate, variables)
            opt.apply_gradients(zip(grads, variables))
            return loss

        @tf.function
        def step(batch):
            per_replica = self.strategy.run(replica_step, args=batch)
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        return step

    def build_loss_step(self):
        model, recipe = self.model, self.recipe

        def replica(images, targets):
            pred = model(images, training=False)
            losses = per_example_loss(recipe.kind, recipe.loss, targets, pred)
            return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32)

        @tf.function
        def step(batch):
            total, count = self.strategy.run(replica, args=batch)
            reduce = self.strategy.reduce
            return (
                reduce(tf.distribute.ReduceOp.SUM, total, axis=None),
                reduce(tf.distribute.ReduceOp.SUM, count, axis=None),
            )

        return step

    def build_predict_step(self):
        model, recipe = self.model, self.recipe

        def replica(images, targets):
            if images.shape.rank == 5:  # TenCrop: [B, 10, S, S, C] -> mean of the crops' outputs
                b, n = tf.shape(images)[0], tf.shape(images)[1]
                flat = tf.reshape(images, tf.concat([[b * n], tf.shape(images)[2:]], 0))
                pred = tf.cast(model(flat, training=False), tf.float32)
                pred = tf.reduce_mean(tf.reshape(pred, [b, n, -1]), axis=1)
            else:
                pred = tf.cast(model(images, training=False), tf.float32)
            if recipe.kind == "segmentation":
                return dice_stats_tf(pred, targets), tf.zeros([tf.shape(pred)[0], 0])
            return pred, tf.cast(targets, tf.float32)

        @tf.function
        def step(batch):
            out, targets = self.strategy.run(replica, args=batch)
            return self.strategy.gather(out, axis=0), self.strategy.gather(targets, axis=0)

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

    def run_epoch(self, dist_dataset, lr_fn, progbar=None, steps_per_epoch=None):
        """Train one epoch; returns (mean loss, steps). lr_fn(step) -> learning rate.

        `dist_dataset`: a (distributed) dataset holding one epoch, or, with `steps_per_epoch`, an
        iterator over repeated epochs from which that many batches are taken.

        A non-finite loss ends the epoch at the first sync point after it (the returned steps
        count up to and including that step).
        """
        total, steps, pending = 0.0, 0, []

        def drain():
            nonlocal total
            values = [float(v) for v in pending]
            pending.clear()
            for i, value in enumerate(values):
                if not np.isfinite(value):
                    return value, steps - len(values) + i + 1
                total += value
            if progbar is not None and values:
                progbar.update(steps, [("loss", float(np.mean(values)))])
            return None

        if steps_per_epoch is not None:
            dist_dataset = itertools.islice(dist_dataset, steps_per_epoch)
        for batch in dist_dataset:
            self.optimizer.learning_rate.assign(lr_fn(steps))
            pending.append(self.train_step(batch))
            steps += 1
            if len(pending) >= self.loss_sync_every and (bad := drain()):
                return bad
        if bad := drain():
            return bad
        self.sync_statistics()
        return (total / steps if steps else float("nan")), steps

    def mean_loss(self, dist_dataset):
        total, count = 0.0, 0.0
        for batch in dist_dataset:
            t, c = self.loss_step(batch)
            total += float(t)
            count += float(c)
        return total / count if count else float("nan")

    def predict(self, dist_dataset):
        """Gathered (outputs, targets) over the whole split, in numpy."""
        outs, targets = [], []
        for batch in dist_dataset:
            o, t = self.predict_step(batch)
            outs.append(o.numpy())
            targets.append(t.numpy())
        return np.concatenate(outs), np.concatenate(targets)


def dice_stats_tf(pred, target, threshold=metrics_lib.DICE_THRESHOLD):
    """Per-image (intersection, predicted positives, target positives): exact Dice inputs."""
    b = tf.shape(pred)[0]
    p = tf.cast(tf.reshape(pred, [b, -1]) > threshold, tf.float32)
    t = tf.cast(tf.reshape(target, [b, -1]) > 0.5, tf.float32)
    return tf.stack([tf.reduce_sum(p * t, 1), tf.reduce_sum(p, 1), tf.reduce_sum(t, 1)], axis=1)
