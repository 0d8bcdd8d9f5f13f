"""Reduced-resolution builder configs: images shrunk once at build time (`<builder>/512`, `/256`).

Many users train from pre-shrunk copies (CheXpert-small, TorchXRayVision's 224/512 sets): a
1024 px radiograph costs its PNG decode (~5.3 ms) on every read, a 512 px JPEG ~0.8 ms. A
reduced config stores every image with its **shorter side at most `shorter_side`** (aspect
ratio kept, never enlarged), as **JPEG quality 95**, shrunk with **PIL's antialiased bicubic
filter**; masks are shrunk with nearest neighbour (so they stay {0, 1}) and stay lossless PNG.
The choices were measured (benchmarks/resized_formats.py, benchmarks/RESULTS.md):

* format: at 512 px a grey JPEG q95 decodes 3.3x faster than PNG (1.07 vs 3.58 ms CPU, half the
  bytes), mean |difference| 0.6-1.1 grey levels (max 7-9) on real DRIVE and generated
  radiographs; lossless WebP decodes no faster than PNG on real images, TF decodes it to 3
  channels only and TFDS's Image feature cannot declare it. Documented tolerance (tested in
  resized_test.py): a stored image differs from the uncompressed shrink by <= 2 grey levels on
  average and <= 16 at any pixel, decoded with the accurate IDCT (PIL's;
  `tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`): TF's default fast IDCT adds up to 8.
* filter: bicubic gives the pipeline's RandomResizedCrop(224) and Resize(256)+CenterCrop(224)
  inputs closest (or tied closest) to those from the full-resolution image among nearest, box,
  bilinear, bicubic and Lanczos.

The default configs stay the full-resolution, lossless ones (the paper's protocol): a reduced
config changes what RandomResizedCrop sees (its small crops are upsampled, not downsampled).

  ImageConfig            BuilderConfig with `shorter_side` (None: native, lossless)
  reduced(config, side)  a copy of `config` storing images shrunk to `side`
  shrunk_size(h, w, s)   the stored (height, width)
  shrink(array, side)    uint8 [H, W, C] -> shrunk uint8 array (bicubic; `nearest` for masks)
  stored_image(array, side, encode_png) / stored_mask(mask, side, encode_png)   what to store
  grey8_file(path, side)       an image file -> 8-bit grey bytes to store (PNG passthrough at
                               native resolution, as `common.grey8_png`; JPEG when shrunk)
"""

from __future__ import annotations

import copy
import io

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from datasets_tfds import common

SIDES = (512, 256)
JPEG_QUALITY = 95
RESAMPLE = Image.BICUBIC


class ImageConfig(tfds.core.BuilderConfig):
    """A builder config with `shorter_side`: None stores native-resolution lossless PNG images;
    an int stores images whose shorter side is at most that many pixels, as JPEG q95."""

    def __init__(self, *, shorter_side=None, **kwargs):
        super().__init__(**kwargs)
        self.shorter_side = shorter_side

    @property
    def image_format(self):
        """The encoding of the `image` feature: "png" (native) or "jpeg" (reduced)."""
        return "png" if self.shorter_side is None else "jpeg"


def reduced(config, side, name=None):
    """A copy of `config` (an ImageConfig) that stores images shrunk to shorter side `side`.

    Named `name`, by default `<side>` for the builder's "default" config
    (`tfmedbench_chestxray14/512`), else `<name>_<side>` (`paper_split_512`); everything else
    (split lists, dtype) is kept.
    """
    out = copy.copy(config)
    if name is None:
        name = str(side) if config.name == "default" else f"{config.name}_{side}"
    out.name = name
    out.shorter_side = int(side)
    out.description = (
        f"{config.description} Images shrunk to shorter side <= {side} px (PIL bicubic, "
        f"antialiased), stored as JPEG quality {JPEG_QUALITY}; masks nearest-neighbour, PNG."
    )
    return out


def shrunk_size(height, width, side):
    """(height, width) with the shorter side `side` (rounded), or unchanged when already <= side."""
    if side is None or min(height, width) <= side:
        return height, width
    scale = side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(array, side, *, nearest=False):
    """uint8 [H, W] or [H, W, C] (C in 1, 3) shrunk to `shrunk_size`; the same array if no change."""
    array = np.asarray(array)
    height, width = shrunk_size(array.shape[0], array.shape[1], side)
    if (height, width) == array.shape[:2]:
        return array
    if array.dtype != np.uint8:
        raise ValueError(f"only uint8 images are shrunk, got {array.dtype}")
    grey = array.ndim == 3 and array.shape[-1] == 1
    image = Image.fromarray(array[..., 0] if grey else array)
    out = np.asarray(image.resize((width, height), Image.NEAREST if nearest else RESAMPLE))
    return out[..., None] if grey else out


def encode_jpeg(array):
    """JPEG q95 bytes of uint8 [H, W, 1] or [H, W, 3] (4:4:4: no chroma subsampling)."""
    array = np.asarray(array)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def stored_image(array, side, encode_png):
    """The `image` bytes to store: `encode_png(array)` at native resolution (`side` None), else
    the JPEG of the uint8 array shrunk to shorter side `side`."""
    if side is None:
        return encode_png(array)
    return encode_jpeg(shrink(array, side))


def stored_mask(mask, side, encode_png):
    """The PNG bytes of a {0, 1} uint8 mask [H, W, 1] at the image's stored size (nearest)."""
    return encode_png(shrink(mask, side, nearest=True))


def image_feature(config, dtype=np.uint8, channels=1):
    """The `image` feature of a builder for `config` (reduced configs: uint8 JPEG)."""
    if getattr(config, "shorter_side", None) is None:
        return tfds.features.Image(shape=(None, None, channels), dtype=dtype,
                                   encoding_format="png")  # fmt: skip
    return tfds.features.Image(shape=(None, None, channels), dtype=np.uint8, encoding_format="jpeg")


def grey8_file(path, side, *, builder_name=""):
    """Bytes of the image file at `path` as 8-bit grey: `common.grey8_png` when `side` is None,
    else the JPEG of the grey image shrunk to shorter side `side` (see `common.to_grey8` for the
    conversions of RGB, palette and 16-bit sources)."""
    if side is None:
        return common.grey8_png(path, builder_name=builder_name)
    image = common.decode_image(epath.Path(path).read_bytes(), path, builder_name=builder_name)
    try:
        grey = common.to_grey8(image)
    except ValueError as err:
        prefix = f"{builder_name}: " if builder_name else ""
        raise common.ManualDataError(f"{prefix}unsupported image {path} (mode {image.mode}): {err}") from err
    return encode_jpeg(shrink(grey, side))
