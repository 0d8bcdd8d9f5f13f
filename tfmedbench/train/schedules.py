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
    """LR at the start of `epoch` (0-based) for per-epoch schedules."""
    if recipe.schedule == "cosine":  # CosineAnnealingLR(T_max=epochs, eta_min=0), per epoch
        return 0.5 * base_lr * (1 + math.cos(math.pi * epoch / max(recipe.epochs, 1)))
    return base_lr


def step_lr(recipe, lr_epoch, global_step, total_steps):
    """LR for one step: 'linear' decays to 0 over all training steps (ECC); others hold."""
    if recipe.schedule == "linear":
        return lr_epoch * max(0.0, 1.0 - global_step / max(total_steps, 1))
    return lr_epoch
