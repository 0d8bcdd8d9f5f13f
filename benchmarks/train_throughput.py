"""Training-step throughput (images/s): tfmedbench's real training step vs plain PyTorch.

  python benchmarks/train_throughput.py --model classifier            # ResNet-50 224, batch 16
  python benchmarks/train_throughput.py --model unet                  # U-Net R50 512, batch 2
  python benchmarks/train_throughput.py --model classifier --variants tf-graph,tf-xla,torch,torch-cl
  python benchmarks/train_throughput.py --device gpu --model classifier --batch 128 \
      --variants tf-mixed-xla,tf-f32,torch-amp,torch

tfmedbench side: `tfmedbench.train.loop.Trainer.run_epoch` on the model `fit` builds
(`build_model(recipe)`), with fit's optimizer (Adam), precision policy and CPU determinism, fed
by a distributed dataset that repeats one batch: per-step learning-rate assignment and fit's
loss read-back (every step on CPU, every 20 on accelerators) included, as users get them.
PyTorch side: the same architecture (benchmarks/torch_reference.py), Adam, a `float(loss)` per
step. Variants alternate in one process (rep 1: A B C D, rep 2: A B C
D, ...) so machine-load drift hits all of them alike; each timing is `--steps` steps after
`--warmup` untimed steps; the table gives the median over `--repeats`.

Variants: tf-graph (jit_compile=False), tf-graph-nodet (without op determinism), tf-graph-kerasbn
(Keras' unfused BatchNormalization, the code before the fused layer), tf-xla (jit_compile=True), tf-default (what `fit`
resolves for this device), tf-mixed / tf-mixed-xla (mixed_float16, GPU), torch (NCHW),
torch-cl (channels_last), torch-amp / torch-amp-cl (float16 autocast, GPU).
TF threading must be set before TF starts: `--tf-intra N --tf-inter M` (0 = TF's default).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import environment, fmt, median, table

CASES = {
    # model: (task recipe used for the tfmedbench side, image size, CPU batch)
    "classifier": ("DXC14", 224, 16),
    "unet": ("VFS", 512, 2),
}


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=sorted(CASES), default="classifier")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--variants", default="tf-default,tf-graph,tf-xla,torch,torch-cl")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="timed steps per repetition")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--tf-intra", type=int, default=0)
    p.add_argument("--tf-inter", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    p.add_argument("--no-determinism", action="store_true",
                   help="do not enable TF op determinism (fit enables it on CPU)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args()


class TFVariant:
    """The training step `fit` runs, for one (precision, jit) setting."""

    def __init__(self, recipe, size, batch, precision, jit, determinism, seed=0):
        import keras
        import numpy as np
        import tensorflow as tf

        from tfmedbench.train import strategy as strategy_lib
        from tfmedbench.train.build import build_model
        from tfmedbench.train.loop import Trainer

        strategy_lib.set_precision(precision)
        keras.utils.set_random_seed(seed)
        strat = tf.distribute.get_strategy()
        with strat.scope():
            model = build_model(recipe)
            opt = keras.optimizers.Adam(learning_rate=recipe.lr, beta_1=recipe.beta_1,
                                        beta_2=recipe.beta_2, epsilon=recipe.adam_epsilon)
            if precision == "mixed_float16":
                opt = keras.optimizers.LossScaleOptimizer(opt)
            opt.build(model.trainable_variables)
        sync = strategy_lib.resolve_loss_sync_every(strategy_lib.accelerator(strat))
        self.trainer = Trainer(strat, model, opt, recipe, jit, sync)
        strategy_lib.set_precision("float32")
        rng = np.random.default_rng(seed)
        images = rng.standard_normal((batch, size, size, 3)).astype("float32")
        if recipe.kind == "classification":
            targets = (rng.random((batch, recipe.num_outputs)) < 0.3).astype("float32")
        else:
            targets = (rng.random((batch, size, size, 1)) < 0.2).astype("float32")
        self.batch = (tf.constant(images), tf.constant(targets))
        self.strategy = strat
        self.lr = recipe.lr
        self.determinism = determinism

    def run(self, steps):
        import tensorflow as tf
        from tensorflow.python.framework import config

        # Op determinism is process-wide; set it to this variant's value for its steps.
        (config.enable_op_determinism if self.determinism else config.disable_op_determinism)()

        from tfmedbench.data.pipeline import dataset_options

        # fit's dataset options (autotune off: see pipeline.dataset_options).
        ds = tf.data.Dataset.from_tensors(self.batch).repeat(steps)
        ds = ds.with_options(dataset_options())
        dist = self.strategy.experimental_distribute_dataset(ds)
        loss, n = self.trainer.run_epoch(dist, lambda i: self.lr)
        assert n == steps and math.isfinite(loss), (n, loss)


class TorchVariant:
    def __init__(self, model_kind, num_outputs, size, batch, device, amp, channels_last, seed=0):
        import torch

        from benchmarks import torch_reference as ref

        torch.manual_seed(seed)
        images = torch.randn(batch, 3, size, size)
        if model_kind == "classifier":
            model = ref.Classifier(num_outputs)
            targets = (torch.rand(batch, num_outputs) < 0.3).float()
            loss = ref.bce_loss
        else:
            model = ref.Unet(1)
            targets = (torch.rand(batch, 1, size, size) < 0.2).float()
            loss = ref.bce_loss
        dev = "cuda" if device == "gpu" else "cpu"
        self.step = ref.TorchStep(model, images, targets, loss, device=dev, amp=amp,
                                  channels_last=channels_last)

    def run(self, steps):
        for _ in range(steps):
            self.step()


def make_variant(name, args, recipe, size, batch):
    from tfmedbench.train import strategy as strategy_lib

    if name.startswith("tf-"):
        kind = name[3:]
        device = args.device
        # fit enables op determinism on CPU; XLA cannot compile MaxPoolGrad under it, so XLA
        # variants (and "-nodet") run without it.
        determinism = device == "cpu" and not args.no_determinism
        fused_bn = True
        if kind.endswith("-kerasbn"):  # Keras 3's own (unfused) BatchNormalization code
            kind, fused_bn = kind[: -len("-kerasbn")], False
        if kind.endswith("-nodet"):
            kind, determinism = kind[: -len("-nodet")], False
        precision, jit = {
            "default": (strategy_lib.resolve_precision("auto", device),
                        strategy_lib.resolve_jit("auto", device)),
            "graph": ("float32", False),
            "f32": ("float32", False),
            "xla": ("float32", True),
            "f32-xla": ("float32", True),
            "mixed": ("mixed_float16", False),
            "mixed-xla": ("mixed_float16", True),
        }[kind]
        determinism = determinism and not jit
        desc = f"{precision}, jit={jit}, det={determinism}, bn={'fused' if fused_bn else 'keras'}"
        from tfmedbench.models import fused_bn as fused_bn_lib

        fused_bn_lib.ENABLED = fused_bn  # read when the step is traced (the warm-up below)
        return TFVariant(recipe, size, batch, precision, jit, determinism), desc
    kind = name[len("torch"):].lstrip("-")
    amp = "amp" in kind
    cl = kind.endswith("cl")
    desc = ("AMP fp16" if amp else "float32") + (", channels_last" if cl else ", NCHW")
    return TorchVariant(args.model, recipe.num_outputs, size, batch, args.device, amp, cl), desc


def main():
    args = parse()
    import tensorflow as tf

    if args.tf_intra:
        tf.config.threading.set_intra_op_parallelism_threads(args.tf_intra)
    if args.tf_inter:
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_inter)
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    from tfmedbench.tasks import get_recipe

    task, size, batch = CASES[args.model]
    size = args.size or size
    batch = args.batch or batch
    recipe = get_recipe(task, image_size=size, batch_size=batch)
    names = [v for v in args.variants.split(",") if v]
    variants = {}
    for name in names:
        t0 = time.time()
        variants[name] = make_variant(name, args, recipe, size, batch)
        variants[name][0].run(args.warmup)  # trace/compile + warm-up, untimed
        from tfmedbench.models import fused_bn as fused_bn_lib

        fused_bn_lib.ENABLED = True
        print(f"# {name}: built and warmed up in {time.time() - t0:.1f}s", file=sys.stderr)
    rates = {n: [] for n in names}
    loads = []
    for rep in range(args.repeats):
        for name in names:
            t0 = time.perf_counter()
            variants[name][0].run(args.steps)
            rates[name].append(args.steps * batch / (time.perf_counter() - t0))
        loads.append(os.getloadavg()[0])
        print(f"# rep {rep + 1}: " + ", ".join(f"{n} {rates[n][-1]:.2f}" for n in names),
              file=sys.stderr)
    bases = [n for n in names if n.startswith("torch")]
    rows = []
    for name in names:
        # Paired: the ratio within each repetition (same machine state), then the median.
        ratios = [fmt(median([a / b for a, b in zip(rates[name], rates[base])])) for base in bases]
        rows.append([name, variants[name][1], fmt(median(rates[name])), fmt(min(rates[name])),
                     fmt(max(rates[name]))] + ratios)
    print(f"\n{args.model} {size}x{size}, batch {batch}, {args.device}; {args.repeats} repeats x "
          f"{args.steps} steps (after {args.warmup} warm-up); TF intra={args.tf_intra or 'default'}"
          f" inter={args.tf_inter or 'default'}, torch threads={torch.get_num_threads()}; "
          f"1-min load during the run: {min(loads):.2f}-{max(loads):.2f}")
    print(environment())
    print(table(["variant", "setting", "img/s (median)", "min", "max"]
                + [f"x {b} (paired median)" for b in bases], rows))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "environment": environment(), "rates": rates}, f)


if __name__ == "__main__":
    main()
