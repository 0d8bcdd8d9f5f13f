"""Strict accounting shared by every reader.

A reader walks every tensor of the source file and either assigns it to one canonical backbone key
(torchvision name, torch layout) or ignores it under a *named* rule of its format. Anything else --
an unknown tensor, a canonical key assigned twice, a wrong shape, a canonical key never assigned --
is collected and reported together, so a bad file fails once with the whole picture. This is the
opposite of `load_state_dict(strict=False)`, which silently left layers at random init.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from weights_converter.errors import ConversionError
from weights_converter.spec import expected_shapes

SHOW = 8  # items listed per category in an error message


@dataclasses.dataclass
class Extraction:
    """A source checkpoint reduced to the canonical backbone, with its accounting."""

    format: str
    tensors: dict  # canonical key -> float32 ndarray, torch layout
    sources: dict  # canonical key -> source key
    ignored: list  # [(source key, reason)]
    notes: list = dataclasses.field(default_factory=list)

    def ignored_summary(self):
        """reason -> count, for the report and the sidecar."""
        out = {}
        for _, reason in self.ignored:
            out[reason] = out.get(reason, 0) + 1
        return out


def _clip(items):
    items = list(items)
    shown = ", ".join(str(i) for i in items[:SHOW])
    return shown + (f", ... (+{len(items) - SHOW} more)" if len(items) > SHOW else "")


class Accountant:
    def __init__(self, fmt, path, depths, width, rules=()):
        self.fmt = fmt
        self.path = path
        self.expected = expected_shapes(depths, width)
        self.rules = [(re.compile(p), reason) for p, reason in rules]
        self.tensors, self.sources = {}, {}
        self.ignored, self.unexpected, self.mismatched, self.duplicated = [], [], [], []
        self.notes = []

    def rule_for(self, key):
        for pattern, reason in self.rules:
            if pattern.search(key):
                return reason
        return None

    def ignore(self, key, reason):
        self.ignored.append((key, reason))

    def reject(self, key, why="unknown"):
        self.unexpected.append(f"{key} ({why})" if why != "unknown" else key)

    def assign(self, canonical, source_key, value):
        if canonical not in self.expected:
            self.reject(source_key)
            return
        if canonical in self.tensors:
            self.duplicated.append(f"{source_key} -> {canonical} (already from {self.sources[canonical]})")
            return
        array = np.asarray(value)
        if tuple(array.shape) != self.expected[canonical]:
            self.mismatched.append(
                f"{source_key} -> {canonical}: {tuple(array.shape)} != {self.expected[canonical]}"
            )
            return
        self.tensors[canonical] = np.ascontiguousarray(array, dtype=np.float32)
        self.sources[canonical] = source_key

    def offer(self, key, value, canonical):
        """Route one source tensor: explicit ignore rule first, then its canonical key or reject."""
        reason = self.rule_for(key)
        if reason is not None:
            self.ignore(key, reason)
        elif canonical is None:
            self.reject(key)
        else:
            self.assign(canonical, key, value)

    def finish(self):
        missing = [k for k in self.expected if k not in self.tensors]
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} backbone tensor(s): {_clip(missing)}")
        if self.unexpected:
            problems.append(
                f"{len(self.unexpected)} unexpected tensor(s) not in the '{self.fmt}' layout or "
                f"its ignore list: {_clip(self.unexpected)}"
            )
        if self.mismatched:
            problems.append(f"{len(self.mismatched)} shape mismatch(es): {_clip(self.mismatched)}")
        if self.duplicated:
            problems.append(f"{len(self.duplicated)} duplicate(s): {_clip(self.duplicated)}")
        if problems:
            raise ConversionError(
                f"{self.path}: does not convert as format '{self.fmt}': " + "; ".join(problems)
                + ". Check --weights-format (omit it to auto-detect) and that the file is a "
                "complete ResNet-50 checkpoint."
            )
        return Extraction(self.fmt, self.tensors, self.sources, self.ignored, self.notes)


def to_numpy(value):
    """torch.Tensor / ndarray -> ndarray; anything else -> None (a non-tensor entry)."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().float().numpy()
    return None
