"""Run-length codec of the SIIM-ACR pneumothorax challenge (`train-rle.csv`).

The challenge's format is unusual, so it is spelled out here:
  * pixels are numbered COLUMN-MAJOR (down the first column, then the next one);
  * the string holds pairs `offset length`, where `offset` counts from the END of the previous
    run (from pixel 0 for the first run): RELATIVE, not absolute, starts;
  * `-1` (some copies write ` -1`) means an empty mask.
This is exactly the challenge's reference `rle2mask` (fill a flat array of width*height, reshape
to (width, height), transpose) and its inverse `mask2rle`, written with numpy instead of Python
loops so the 12,954-row file decodes in seconds.
"""

from __future__ import annotations

import re

import numpy as np

EMPTY = "-1"
_DIGITS = re.compile(r"[0-9\s]*")  # ASCII digits and whitespace only: non-negative integers


def is_empty(rle: str) -> bool:
    return rle.strip() == EMPTY


def runs(rle: str, height: int, width: int):
    """Validated (offsets, lengths) of an RLE string, as exact Python integers.

    Every check happens here, on Python ints, before any numpy arithmetic: values near 2**63
    would wrap around in int64 (a run "ending" before it starts passes a bounds check, and
    `np.repeat` then writes out of bounds), and huge values overflow numpy conversions.
    Raises ValueError (quoting the start of the string) on a non-integer token, an odd number
    of values, a negative offset, a non-positive length, or a run past the image.
    """
    tokens = rle.split()
    if not (rle.isascii() and _DIGITS.fullmatch(rle)):
        if rle.isascii() and all(t.lstrip("-").isdigit() for t in tokens):
            raise ValueError(f"RLE has a negative offset or a non-positive length: {_quote(rle)}")
        raise ValueError(f"RLE has a non-integer value: {_quote(rle)}")
    if not tokens or len(tokens) % 2:
        raise ValueError(f"RLE needs (offset, length) pairs, got {len(tokens)} values: {_quote(rle)}")
    if max(map(len, tokens)) > 19:  # past any image; and int() of a 10**6-digit string is slow
        raise ValueError(f"RLE has a value past the {height}x{width} image: {_quote(rle)}")
    values = list(map(int, tokens))
    offsets, lengths = values[0::2], values[1::2]
    if min(offsets) < 0 or min(lengths) <= 0:
        raise ValueError(f"RLE has a negative offset or a non-positive length: {_quote(rle)}")
    last_pixel = sum(values)  # exact: the end of the last run
    if last_pixel > height * width:
        raise ValueError(f"RLE runs to pixel {last_pixel}, past the {height}x{width} image: {_quote(rle)}")
    return offsets, lengths


def decode(rle: str, height: int, width: int) -> np.ndarray:
    """One RLE string -> uint8 mask [height, width] with values {0, 1}.

    Raises ValueError (quoting the start of the string) on anything the reference decoder would
    silently mis-read: an odd number of values, a negative offset, a non-positive length, or a
    run past the last pixel (see `runs`, which validates with exact integers first).
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    if is_empty(rle):
        return mask
    offsets, lengths = runs(rle, height, width)
    # All values are now known to be within [0, height * width]: int64 arithmetic is exact.
    offsets, lengths = np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64)
    # Run i starts at sum(offsets[:i+1]) + sum(lengths[:i]); so the k-th foreground pixel overall
    # (counting across runs) sits at cumsum(offsets)[its run] + k: every index, no Python loop.
    offset_sums = np.cumsum(offsets)
    pixels = np.repeat(offset_sums, lengths) + np.arange(lengths.sum())
    # Column-major numbering: pixel p is row p % height of column p // height (the reference
    # fills a flat array, reshapes it to (width, height) and transposes).
    mask[pixels % height, pixels // height] = 1
    return mask


def decode_union(rles, height: int, width: int) -> np.ndarray:
    """Several RLE rows of one image (one per region) -> their union, uint8 {0, 1}."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for rle in rles:
        mask |= decode(rle, height, width)
    return mask


def encode(mask: np.ndarray) -> str:
    """Mask [height, width] (nonzero = foreground) -> RLE string; `-1` for an empty mask."""
    mask = np.asarray(mask)
    height, width = mask.shape
    row_major = np.flatnonzero(mask)  # one pass over the array, no transposed copy
    if row_major.size == 0:
        return EMPTY
    # Column-major pixel numbers of the foreground, sorted; a run ends wherever they jump.
    pixels = np.sort(row_major % width * height + row_major // width)
    jumps = np.flatnonzero(np.diff(pixels) != 1)
    starts = pixels[np.concatenate(([0], jumps + 1))]
    ends = pixels[np.concatenate((jumps, [pixels.size - 1]))] + 1
    previous_ends = np.concatenate(([0], ends[:-1]))
    pairs = np.stack([starts - previous_ends, ends - starts], axis=1).reshape(-1)
    return " ".join(str(v) for v in pairs)


def _quote(rle: str, limit: int = 60) -> str:
    text = rle.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")
