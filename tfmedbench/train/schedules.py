"""Learning-rate schedules with PyTorch semantics (the original code's schedulers)."""

from __future__ import annotations

import math


class ReduceOnPlateau:
    """torch.optim.lr_scheduler.ReduceLROnPlateau(mode='min', threshold=1e-4 'rel'):
    multiply the LR by `factor` once the loss has not improved for more than `patience` epochs."""

    def __init__(self, factor=0.5, patience=5, threshold=1e-4):
        self.factor, self.patience, self.threshold = factor, patience, threshold
        self.best = math.inf
        self.bad_epochs = 0

    def state(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]

    def step(self, lr, value):
        if value < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.bad_epochs = 0
            return lr * self.factor
        return lr


def epoch_lr(recipe, epoch, base_lr):
    """LR of `epoch` (0-based) for per-epoch schedules.

    cosine: the original's `cosine_anneal_schedule(t, epochs, lr)` = lr/2 (cos(pi t / T) + 1) is
    set *after* epoch t's training, so epoch 0 runs at the initial lr and epoch e >= 1 at the
    value computed after epoch e - 1 (epochs 0 and 1 both train at the initial lr).
    """
    if recipe.schedule == "cosine":
        t, period = max(epoch - 1, 0), max(recipe.epochs, 1)
        return 0.5 * base_lr * (1 + math.cos(math.pi * (t % period) / period))
    return base_lr


def step_lr(recipe, lr_epoch, global_step, total_steps):
    """LR for one step: 'linear' decays to 0 over all training steps (ECC); others hold."""
    if recipe.schedule == "linear":
        return lr_epoch * max(0.0, 1.0 - global_step / max(total_steps, 1))
    return lr_epoch


class EarlyStopping:
    """The original's rule: keep the best validation loss (strictly lower improves) and stop
    once `patience_counter > patience`, i.e. after patience + 1 epochs without improvement."""

    def __init__(self, patience):
        self.patience = patience
        self.best = math.inf
        self.best_epoch = 0  # 1-based epoch of the best validation loss; 0 = none yet
        self.stale = 0

    def update(self, epoch, value):
        """Record epoch (1-based) with its validation loss; True when it improved."""
        if value < self.best:
            self.best, self.best_epoch, self.stale = value, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def should_stop(self):
        return self.stale > self.patience

    def state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "stale": self.stale}

    def load(self, state):
        self.best, self.best_epoch, self.stale = state["best"], state["best_epoch"], state["stale"]
