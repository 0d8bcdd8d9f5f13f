"""How to store the reduced-resolution builder configs: format and downscaling filter.

  python benchmarks/resized_formats.py [--n 8] [--drive-dir ../shared/data] [--part formats|filters|both]

formats: for each source kind and stored size, the encoded size, the decode CPU time on one
  thread (TF as the input pipeline decodes: JPEG with `dct_method="INTEGER_ACCURATE"`; and PIL,
  what a PyTorch Dataset runs), the pixel difference to the lossless image, and how far TF's
  default JPEG decoding (TFDS's) strays from PIL's, of PNG (zlib level 6, the builders'
  encoder), lossless WebP and JPEG (quality 95 and 90; grey JPEGs have no chroma, RGB ones
  are written 4:4:4). Sources: generated 1024 px chest-X-ray-like radiographs shrunk (PIL
  bicubic) to 512 and 256 (shorter side) and the 20 real DRIVE training images (RGB, and their
  green channel as a grey image, at 512).
filters: how close the benchmark pipeline's input from a shrunk image comes to the input from
  the full-resolution image, per downscaling filter: the classification recipes'
  RandomResizedCrop(224) (the same relative crop box, antialiased bilinear as
  `tfmedbench.data.transforms`) and validation Resize(256) + CenterCrop(224); the LXS/PXS
  recipes' cv2 INTER_NEAREST resize to 224 (image, and the mask's disagreeing pixels).
  Mean absolute difference in grey levels (0-255), over the images and 32 crop boxes each.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.common import environment, table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILTERS = {"nearest": Image.NEAREST, "box (area)": Image.BOX, "bilinear": Image.BILINEAR,
           "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}  # fmt: skip


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=8, help="generated radiographs")
    p.add_argument("--drive-dir", default=os.path.join(REPO, "..", "shared", "data"))
    p.add_argument("--part", choices=("formats", "filters", "both"), default="both")
    p.add_argument("--repeats", type=int, default=5, help="decode timings per image (median)")
    return p.parse_args()


def shrink(array, shorter, resample=Image.BILINEAR):
    """PIL resize of uint8 [H, W] or [H, W, 3] so the shorter side is `shorter`."""
    h, w = array.shape[:2]
    scale = shorter / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(array).resize(size, resample))


def encode(array, fmt):
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=6)
    elif fmt == "webp-lossless":
        image.save(buffer, format="WEBP", lossless=True)
    else:
        image.save(buffer, format="JPEG", quality=int(fmt[len("jpeg"):]), subsampling=0)
    return buffer.getvalue()


def tf_decode(data, fmt, channels):
    """The input pipeline's decode: JPEG with the accurate IDCT (pipeline.decode_feature)."""
    import tensorflow as tf

    if fmt.startswith("jpeg"):
        return tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
    return tf.io.decode_image(data, channels=channels)


def pil_decoded(data, channels):
    array = np.asarray(Image.open(io.BytesIO(data)).convert("L" if channels == 1 else "RGB"))
    return array.reshape(*array.shape[:2], channels).astype(np.int16)


def timed(fn, repeats):
    """Median CPU time of this thread per call: both decoders run in the calling thread (TF's
    eager ops on a 1-thread runtime), and thread CPU time does not count the time other
    processes of a shared machine hold the core."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def sources(args):
    """{kind: [full-resolution uint8 arrays]}."""
    from datasets_tfds.nih_shenzhen.fake_data import chest_xray

    rng = np.random.default_rng(0)
    out = {"generated radiograph 1024": [chest_xray(rng, 1024, i % 2 == 1) for i in range(args.n)]}
    files = sorted(glob.glob(os.path.join(args.drive_dir, "DRIVE", "training", "images", "*.tif")))
    if files:
        rgb = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        out["real DRIVE RGB 565x584"] = rgb
        out["real DRIVE green 565x584"] = [np.ascontiguousarray(a[..., 1]) for a in rgb]
    else:
        print(f"# no DRIVE images under {args.drive_dir}: real-image rows skipped", file=sys.stderr)
    return out


def format_rows(args, kinds):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    for kind, images in kinds.items():
        for shorter in (None, 512, 256):
            if shorter is not None and shorter >= min(images[0].shape[:2]) and "DRIVE" not in kind:
                continue
            if "DRIVE" in kind and shorter == 256:
                continue
            stored = [a if shorter is None else shrink(a, shorter) for a in images]
            channels = 1 if stored[0].ndim == 2 else 3
            for fmt in ("png", "webp-lossless", "jpeg95", "jpeg90"):
                blobs = [encode(a, fmt) for a in stored]
                # TF decodes WebP to 3 channels only (and TFDS's Image feature has no WebP).
                decode_channels = 3 if fmt.startswith("webp") else channels
                tf_ms = 1e3 * statistics.mean(
                    timed(lambda b=b: tf_decode(b, fmt, decode_channels), args.repeats)
                    for b in blobs
                )
                # TF's default JPEG IDCT (what TFDS's decode runs) against PIL's.
                fast = max(int(np.abs(tf.io.decode_image(b, channels=decode_channels).numpy()
                                      .astype(np.int16) - pil_decoded(b, decode_channels)).max())
                           for b in blobs)  # fmt: skip
                pil_ms = 1e3 * statistics.mean(
                    timed(lambda b=b: Image.open(io.BytesIO(b)).load(), args.repeats) for b in blobs
                )
                diffs = []
                for a, b in zip(stored, blobs):
                    decoded = np.asarray(Image.open(io.BytesIO(b)))
                    if decoded.ndim == 3 and a.ndim == 2:
                        decoded = decoded[..., 0]
                    diffs.append(np.abs(decoded.astype(np.int16) - a.astype(np.int16)))
                size = "full" if shorter is None else f"shorter side {shorter}"
                rows.append([kind, size, fmt, f"{statistics.mean(len(b) for b in blobs) / 1e3:.0f}",
                             f"{tf_ms:.2f}", f"{pil_ms:.2f}",
                             f"{statistics.mean(float(d.mean()) for d in diffs):.2f}",
                             str(max(int(d.max()) for d in diffs)), str(fast)])  # fmt: skip
        print(f"# formats: {kind} done", file=sys.stderr)
    return rows


def crop_boxes(rng, height, width, n):
    """torchvision RandomResizedCrop boxes as fractions of the image (y0, x0, h, w)."""
    import random

    from benchmarks.pipeline_throughput import rrc_params

    r = random.Random(int(rng.integers(1 << 30)))
    return [tuple(v / d for v, d in zip(rrc_params(r, height, width), (height, width) * 2))
            for _ in range(n)]  # fmt: skip


def rrc(image, box, size=224):
    """The pipeline's crop + antialiased bilinear resize, for a box given in fractions."""
    import tensorflow as tf

    from tfmedbench.data import transforms

    h, w = image.shape[:2]
    y0, x0 = round(box[0] * h), round(box[1] * w)
    ch, cw = max(1, round(box[2] * h)), max(1, round(box[3] * w))
    crop = tf.image.crop_to_bounding_box(image[..., None], y0, x0, min(ch, h - y0), min(cw, w - x0))
    return (transforms.resize(transforms.to_float(crop), size).numpy()[..., 0] * 255.0)


def validation(image):
    from tfmedbench.data import transforms

    out = transforms.center_crop(transforms.resize(transforms.to_float(image[..., None]), 256), 224)
    return out.numpy()[..., 0] * 255.0


def nearest_224(image):
    import cv2

    return cv2.resize(image, (224, 224), interpolation=cv2.INTER_NEAREST).astype(np.float32)


def lung_mask(height, width):
    yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    inside = [((xx - cx) / 0.17) ** 2 + ((yy - 0.5) / 0.33) ** 2 < 1 for cx in (0.3, 0.7)]
    return (inside[0] | inside[1]).astype(np.uint8)


def filter_rows(kinds):
    rng = np.random.default_rng(1)
    rows = []
    for kind, images in kinds.items():
        if "RGB" in kind:
            continue
        shorter = 512 if "1024" in kind else 256
        boxes = [crop_boxes(rng, *image.shape[:2], 32) for image in images]
        full_rrc = [[rrc(image, b) for b in bs] for image, bs in zip(images, boxes)]
        full_val = [validation(image) for image in images]
        full_near = [nearest_224(image) for image in images]
        mask = lung_mask(*images[0].shape[:2])
        for name, resample in FILTERS.items():
            small = [shrink(image, shorter, resample) for image in images]
            d_rrc = statistics.mean(
                float(np.abs(rrc(s, b) - f).mean())
                for s, bs, fs in zip(small, boxes, full_rrc) for b, f in zip(bs, fs)
            )
            d_val = statistics.mean(float(np.abs(validation(s) - f).mean())
                                    for s, f in zip(small, full_val))  # fmt: skip
            d_near = statistics.mean(float(np.abs(nearest_224(s) - f).mean())
                                     for s, f in zip(small, full_near))  # fmt: skip
            small_mask = shrink(mask * 255, shorter, resample) > 127
            mask_diff = float((nearest_224(small_mask.astype(np.uint8)) != nearest_224(mask)).mean())
            rows.append([kind, str(shorter), name, f"{d_rrc:.2f}", f"{d_val:.2f}", f"{d_near:.2f}",
                         f"{100 * mask_diff:.2f}"])  # fmt: skip
        print(f"# filters: {kind} done", file=sys.stderr)
    return rows


def main():
    args = parse()
    print(environment())
    kinds = sources(args)
    if args.part in ("formats", "both"):
        print("\nStored format: size, decode time on one thread, difference to lossless")
        print(table(["source", "stored", "format", "kB", "TF decode ms (CPU)", "PIL decode ms (CPU)",
                     "mean abs diff", "max abs diff", "TF default IDCT: max diff to PIL"],
                    format_rows(args, kinds)))  # fmt: skip
    if args.part in ("filters", "both"):
        print("\nDownscaling filter: mean |pipeline input from the shrunk image - from the full "
              "image| (grey levels), and mask pixels that differ (%)")
        print(table(["source", "shorter side", "filter", "RandomResizedCrop 224", "val Resize 256 "
                     "+ CenterCrop 224", "cv2 nearest 224 (LXS/PXS)", "mask differs %"],
                    filter_rows(kinds)))  # fmt: skip


if __name__ == "__main__":
    main()
