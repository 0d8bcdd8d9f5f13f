"""Schedules and stopping as the original code applies them."""

import math

import numpy as np
import pytest

from tfmedbench.tasks import get_recipe
from tfmedbench.train import schedules


def original_cosine_anneal_schedule(t, epochs, learning_rate):
    """utils.py of the original code, verbatim in substance."""
    cos_inner = np.pi * (t % (epochs // 1)) / (epochs // 1)
    return float(learning_rate / 2 * (np.cos(cos_inner) + 1))


def test_cosine_lr_is_set_after_each_epoch_as_the_original():
    recipe = get_recipe("VFS")  # cosine over its 100-epoch cap
    # The original trains epoch e at the lr set after epoch e - 1 (the initial lr for e = 0).
    lr, expected = recipe.lr, []
    for epoch in range(recipe.epochs):
        expected.append(lr)
        lr = original_cosine_anneal_schedule(epoch, recipe.epochs, recipe.lr)
    got = [schedules.epoch_lr(recipe, e, recipe.lr) for e in range(recipe.epochs)]
    assert got == pytest.approx(expected, rel=1e-12)
    assert got[0] == got[1] == recipe.lr and got[2] < recipe.lr


def test_early_stopping_counts_like_the_original():
    # patience 10: the original stops when patience_counter > 10, i.e. at the 11th epoch
    # without improvement.
    stopper = schedules.EarlyStopping(patience=10)
    losses = [1.0, 0.9, 0.8] + [0.85] * 30
    epochs = 0
    for epoch, loss in enumerate(losses, start=1):
        stopper.update(epoch, loss)
        epochs = epoch
        if stopper.should_stop:
            break
    assert epochs == 3 + 11 and stopper.best_epoch == 3 and stopper.best == 0.8
    # a tie is not an improvement (strict <, as the original)
    s = schedules.EarlyStopping(patience=0)
    s.update(1, 0.5)
    assert not s.update(2, 0.5) and s.should_stop


def test_plateau_halves_after_more_than_patience_bad_epochs():
    plateau, lr = schedules.ReduceOnPlateau(0.5, 5), 1.0
    lrs = []
    for value in [1.0] + [1.0] * 12:
        lr = plateau.step(lr, value)
        lrs.append(lr)
    assert lrs[:6] == [1.0] * 6 and lrs[6] == 0.5 and lrs[12] == 0.25
    assert math.isinf(schedules.ReduceOnPlateau().best)
