"""Trainer.run_epoch reading the loss back every N steps (accelerator default) must train exactly
as reading it every step, and still stop at the first non-finite loss."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmedbench.tasks import get_recipe
from tfmedbench.train.loop import Trainer


def trainer(sync_every, lr=0.1):
    keras.utils.set_random_seed(0)
    recipe = get_recipe("TXC")
    strat = tf.distribute.get_strategy()
    model = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")]
    )
    opt = keras.optimizers.Adam(lr)
    opt.build(model.trainable_variables)
    return Trainer(strat, model, opt, recipe, False, loss_sync_every=sync_every)


class Recorder:
    """Stands in for keras.utils.Progbar: records update(current, values) calls."""

    def __init__(self):
        self.calls = []

    def update(self, current, values):
        self.calls.append((current, values))


def data(n_batches, poison_at=None):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_batches * 2, 4, 4, 3)).astype("float32")
    if poison_at is not None:
        x[poison_at * 2] = np.nan
    y = (rng.random((n_batches * 2, 1)) < 0.5).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(2)


def test_sync_every_n_trains_identically():
    results = []
    for sync_every in (1, 3, 100):
        t = trainer(sync_every)
        progbar = Recorder()
        loss, steps = t.run_epoch(data(7), lambda i: 0.1 / (1 + i), progbar)
        results.append((loss, steps, [w.numpy() for w in t.model.weights], t.optimizer.iterations))
        assert progbar.calls[-1][0] == 7  # the progress bar reached the end ...
        assert len(progbar.calls) == math.ceil(7 / sync_every)  # ... updated at each read
        # Its running mean (Progbar weights each value by the steps it covers) is the epoch's.
        seen, weighted = 0, 0.0
        for current, values in progbar.calls:
            weighted += values[0][1] * (current - seen)
            seen = current
        assert weighted / seen == pytest.approx(loss, rel=1e-6)
    (loss1, steps1, w1, it1), *others = results
    assert steps1 == 7 and math.isfinite(loss1) and int(it1) == 7
    for loss, steps, w, it in others:
        assert steps == steps1 and int(it) == 7
        assert loss == pytest.approx(loss1, rel=1e-6)
        for a, b in zip(w, w1):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sync_every", [1, 4])
def test_first_non_finite_step_is_reported(sync_every):
    t = trainer(sync_every)
    loss, steps = t.run_epoch(data(8, poison_at=2), lambda i: 0.1)
    assert not math.isfinite(loss)
    assert steps == 3  # the third batch holds the NaN image


def _replica_step(tmp_path, n, loss, batch):
    import subprocess
    import sys

    out = tmp_path / f"{n}-replicas.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "tfmedbench.testing.replica_worker", str(n), loss, str(batch),
         str(out)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


def test_global_batch_loss_does_not_depend_on_the_replica_split(tmp_path):
    # The original computes one soft Dice (or one BCE mean) over its whole batch. Split over two
    # replicas -- evenly (4 = 2 + 2) and unevenly with an empty replica (1 = 1 + 0, a partial
    # last batch) -- the loss and the update must equal one replica's, up to summation order.
    one = _replica_step(tmp_path, 1, "dice,bce", "4,1")
    two = _replica_step(tmp_path, 2, "dice,bce", "4,1")
    for key in ("dice-4", "dice-1", "bce-4", "bce-1"):
        batch = int(key.split("-")[1])
        assert one[f"{key}.count"] == two[f"{key}.count"] == batch
        assert two[f"{key}.loss"] == pytest.approx(one[f"{key}.loss"], rel=1e-6), key
        weights = [k for k in one if k.startswith(f"{key}.w")]
        for name in weights:
            np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
        # and the step really moved the weights (the gradient was not zero)
        assert any(not np.array_equal(one[k], one[k.replace(".w", ".init")]) for k in weights)


def test_soft_dice_is_one_dice_over_the_batch():
    from tfmedbench.train.loop import global_batch_loss

    rng = np.random.default_rng(3)
    pred = rng.random((3, 8, 8, 1)).astype(np.float32)
    target = (rng.random((3, 8, 8, 1)) < 0.2).astype(np.float32)
    value, _ = tf.distribute.get_strategy().run(
        lambda p, t: global_batch_loss("dice", t, p), args=(pred, target))
    inter, denom = (pred * target).sum(), pred.sum() + target.sum()
    assert float(value) == pytest.approx(1 - (2 * inter + 1) / (denom + 1), rel=1e-6)
