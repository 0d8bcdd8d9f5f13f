"""Write a reference torch ResNet in each release's exact on-disk structure.

Every writer takes the eval-mode reference model (`torch_resnet.reference_resnet`) and writes the
file as the authors' code saved it: same top-level keys, prefixes, heads, non-tensor extras. The
SimCLR writer emits a TF1 name-based checkpoint (tf.raw_ops.SaveV2) named the way
google-research/simclr's `tf.layers` graph names its variables; the BYOL writer pickles a
Haiku-style experiment state whose classes live under the real module names (registered as
throw-away modules only while pickling).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import pickle
import sys
import types

import numpy as np
import torch

HEAD_DIM = 16  # projection/prototype sizes: small, the readers ignore them anyway


def backbone_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}


def _feat(model):
    return model.fc.in_features


def _rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _optimizer_state():
    return {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "weight_decay": 1e-4, "params": [0, 1]}]}


def write_torchvision(model, path, counters=False):
    """torchvision resnet50-*.pth: flat, with fc; the 2017 file predates num_batches_tracked."""
    sd = model.state_dict()
    if not counters:
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, path)


def write_barlow(model, path):
    """Barlow Twins resnet50.pth: flat torchvision keys, fc removed (model.fc = Identity)."""
    torch.save(backbone_state(model), path)


def write_moco(model, path, version=2, cleaned=True):
    """MoCo / PCL: {'epoch','arch','state_dict','optimizer'}, backbone under module.encoder_q."""
    c = _feat(model)
    sd = {f"module.encoder_q.{k}": v for k, v in backbone_state(model).items()}
    if version == 1:
        sd["module.encoder_q.fc.weight"], sd["module.encoder_q.fc.bias"] = _rand(HEAD_DIM, c), _rand(HEAD_DIM)
    else:
        sd["module.encoder_q.fc.0.weight"], sd["module.encoder_q.fc.0.bias"] = _rand(c, c), _rand(c)
        sd["module.encoder_q.fc.2.weight"], sd["module.encoder_q.fc.2.bias"] = _rand(HEAD_DIM, c), _rand(HEAD_DIM)
    if not cleaned:  # the training-time checkpoint: key encoder + queue too
        for k in list(sd):
            sd[k.replace("encoder_q", "encoder_k")] = sd[k].clone() + 0.5
        sd["module.queue"] = _rand(HEAD_DIM, 64)
        sd["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": sd, "optimizer": _optimizer_state()}, path)


def write_swav(model, path, prototypes="single"):
    """SwAV / DeepCluster-v2 / SeLa-v2: flat, module.* with projection_head and prototypes."""
    c = _feat(model)
    sd = {f"module.{k}": v for k, v in backbone_state(model).items()}
    sd["module.projection_head.0.weight"], sd["module.projection_head.0.bias"] = _rand(32, c), _rand(32)
    for field, value in (("weight", torch.ones(32)), ("bias", torch.zeros(32)),
                         ("running_mean", _rand(32)), ("running_var", torch.ones(32))):
        sd[f"module.projection_head.1.{field}"] = value
    sd["module.projection_head.1.num_batches_tracked"] = torch.tensor(7)
    sd["module.projection_head.3.weight"], sd["module.projection_head.3.bias"] = _rand(HEAD_DIM, 32), _rand(HEAD_DIM)
    if prototypes == "single":
        sd["module.prototypes.weight"] = _rand(30, HEAD_DIM)
    else:  # DeepCluster-v2: MultiPrototypes
        for i in range(3):
            sd[f"module.prototypes.prototypes{i}.weight"] = _rand(30, HEAD_DIM, seed=i)
    torch.save(sd, path)


def write_pycontrast(model, path, pirl=False, ema=True):
    """PyContrast InsDis / PIRL / InfoMin: {'model','model_ema','contrast','optimizer','epoch','opt'}."""
    c = _feat(model)
    sd = {f"module.encoder.{k}": v for k, v in backbone_state(model).items()}
    sd["module.head.fc.0.weight"], sd["module.head.fc.0.bias"] = _rand(c, c), _rand(c)
    sd["module.head.fc.2.weight"], sd["module.head.fc.2.bias"] = _rand(HEAD_DIM, c), _rand(HEAD_DIM)
    if pirl:
        sd["module.head_jig.fc1.weight"], sd["module.head_jig.fc1.bias"] = _rand(c, c), _rand(c)
        sd["module.head_jig.fc2.weight"], sd["module.head_jig.fc2.bias"] = _rand(HEAD_DIM, 9 * c), _rand(HEAD_DIM)
    out = {
        "model": sd,
        "contrast": {"memory": _rand(64, HEAD_DIM), "params": torch.tensor([-1.0, 0.07])},
        "optimizer": _optimizer_state(),
        "epoch": 800,
        "opt": argparse.Namespace(method="PIRL" if pirl else "InfoMin", arch="resnet50", nce_k=16384),
    }
    if ema:
        out["model_ema"] = {k: v.clone() for k, v in sd.items()}
    torch.save(out, path)


def write_inat2021(model, path, module_prefix=False):
    """NeWT iNat2021 release: {'state_dict', 'epoch', 'arch', 'best_acc1', 'optimizer'}, fc 10000."""
    c = _feat(model)
    p = "module." if module_prefix else ""
    sd = {f"{p}{k}": v for k, v in backbone_state(model).items()}
    sd[f"{p}fc.weight"], sd[f"{p}fc.bias"] = _rand(10000, c), _rand(10000)
    torch.save({"epoch": 90, "arch": "resnet50", "state_dict": sd, "best_acc1": torch.tensor(71.3),
                "optimizer": _optimizer_state()}, path)


def write_benchmark(model, path, module_prefix=False, classes=14):
    """The paper's Zenodo in-domain / domain-adapted models: {'state_dict', ...}, head fc.0."""
    c = _feat(model)
    p = "module." if module_prefix else ""
    sd = {f"{p}{k}": v for k, v in backbone_state(model).items()}
    sd[f"{p}fc.0.weight"], sd[f"{p}fc.0.bias"] = _rand(classes, c), _rand(classes)
    torch.save({"epoch": 37, "state_dict": sd, "optimizer": _optimizer_state(), "lossMIN": 0.13}, path)


def write_simclr_tonylins(model, path):
    """tonylins/simclr-converter output: {'state_dict': torchvision keys incl. fc (head_supervised)}."""
    torch.save({"state_dict": model.state_dict()}, path)


def separius_key(key):
    """torchvision key -> Separius/SimCLRv2-Pytorch key (his ResNet's module tree)."""
    parts = key.split(".")
    if parts[0] == "conv1":
        return "net.0.0.weight"
    if parts[0] == "bn1":
        return f"net.0.1.0.{parts[1]}"
    if parts[0] == "fc":
        return key
    stage, block, module = parts[0][len("layer"):], parts[1], parts[2]
    base = f"net.{stage}.blocks.{block}"
    if module == "downsample":
        return f"{base}.projection.shortcut.weight" if parts[3] == "0" else f"{base}.projection.bn.0.{parts[4]}"
    index = int(module[-1])  # conv1..3 -> net.0/2/4 ; bn1..3 -> net.1/3/5 (BatchNormRelu .0)
    if module.startswith("conv"):
        return f"{base}.net.{2 * (index - 1)}.weight"
    return f"{base}.net.{2 * (index - 1) + 1}.0.{parts[3]}"


def write_simclr_separius(model, path):
    """Separius/SimCLRv2-Pytorch output: {'resnet': net.* keys + fc, 'head': contrastive head}."""
    resnet = {separius_key(k): v for k, v in model.state_dict().items()}
    c = _feat(model)
    head = {"layers.0.weight": _rand(c, c), "layers.1.weight": torch.ones(c), "layers.1.bias": torch.zeros(c),
            "layers.1.running_mean": torch.zeros(c), "layers.1.running_var": torch.ones(c)}
    torch.save({"resnet": resnet, "head": head}, path)


# ---------------------------------------------------------------------------- SimCLR (TF1)


class _TF1Scope:
    """tf.layers naming inside variable_scope('base_model'): base, base_1, base_2, ... per base."""

    def __init__(self, scope):
        self.scope, self.counts = scope, collections.Counter()

    def unique(self, base):
        i = self.counts[base]
        self.counts[base] += 1
        return f"{self.scope}/{base}" + (f"_{i}" if i else "")


def simclr_tf1_variables(model, depths, ema=False, momentum=False):
    """Variables of google-research/simclr resnet_v1 (bottleneck, sk_ratio=0), named by replaying
    its graph construction: stem conv/bn; per block projection (first block only), then a, b, c."""
    sd = model.state_dict()
    scope = _TF1Scope("base_model")
    out = {}

    def conv(module):
        out[f"{scope.unique('conv2d')}/kernel"] = sd[f"{module}.weight"].permute(2, 3, 1, 0).numpy()

    def batch_norm(module):
        name = scope.unique("batch_normalization")
        for tf_name, pt in (("gamma", "weight"), ("beta", "bias"),
                            ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            out[f"{name}/{tf_name}"] = sd[f"{module}.{pt}"].numpy()

    conv("conv1")
    batch_norm("bn1")
    for stage, blocks in enumerate(depths, start=1):
        for b in range(blocks):
            block = f"layer{stage}.{b}"
            if b == 0:  # bottleneck_block(use_projection=True): shortcut built first
                conv(f"{block}.downsample.0")
                batch_norm(f"{block}.downsample.1")
            for k in (1, 2, 3):
                conv(f"{block}.conv{k}")
                batch_norm(f"{block}.bn{k}")
    c = _feat(model)
    extra = {
        "global_step": np.array(250228, dtype=np.int64),
        "head_supervised/linear_layer/dense/kernel": np.random.default_rng(1).standard_normal((c, 1000)).astype(np.float32),
        "head_supervised/linear_layer/dense/bias": np.zeros(1000, np.float32),
        "head_contrastive/nl_0/dense/kernel": np.ones((c, c), np.float32),
        "head_contrastive/nl_0/batch_normalization/gamma": np.ones(c, np.float32),
    }
    if momentum:
        extra.update({f"{k}/Momentum": np.zeros_like(v) for k, v in out.items() if k.endswith(("kernel", "gamma", "beta"))})
    if ema:
        extra.update({f"ema_model/{k}": v + 1.0 for k, v in out.items()})
    out.update(extra)
    return out


def write_tf_checkpoint(variables, prefix):
    import tensorflow as tf

    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )
    return prefix


def write_simclr_tf(model, prefix, depths, version=1):
    """v1 (ResNet50_1x release): base_model + heads + global_step; v2 (r50_1x_sk0, model.ckpt-250228)
    additionally carries Momentum slots and the ema_model copy."""
    v2 = version == 2
    return write_tf_checkpoint(simclr_tf1_variables(model, depths, ema=v2, momentum=v2), prefix)


# ---------------------------------------------------------------------------- BYOL (Haiku pickle)


@contextlib.contextmanager
def _modules(*names):
    """Register empty modules so pickle can name classes under the real module paths."""
    added = []
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub not in sys.modules:
                sys.modules[sub] = types.ModuleType(sub)
                added.append(sub)
    try:
        yield {n: sys.modules[n] for n in names}
    finally:
        for sub in added:
            sys.modules.pop(sub, None)


def _haiku_params_and_state(model, torso, rng):
    """Online params / state of byol's ResNetTorso + projector, predictor, classifier."""
    sd = model.state_dict()
    params, state = {}, {}

    def conv(hk_module, module):
        params[f"{torso}/~/{hk_module}"] = {"w": sd[f"{module}.weight"].permute(2, 3, 1, 0).numpy()}

    def bn(hk_module, module):
        name = f"{torso}/~/{hk_module}"
        c = sd[f"{module}.weight"].shape[0]
        params[name] = {"scale": sd[f"{module}.weight"].numpy().reshape(1, 1, 1, c),
                        "offset": sd[f"{module}.bias"].numpy().reshape(1, 1, 1, c)}
        for ema, pt in (("mean_ema", "running_mean"), ("var_ema", "running_var")):
            avg = sd[f"{module}.{pt}"].numpy().reshape(1, 1, 1, c)
            state[f"{name}/~/{ema}"] = {"counter": np.array(1000, np.int32), "hidden": avg * 0.9, "average": avg}

    conv("initial_conv", "conv1")
    bn("initial_batchnorm", "bn1")
    for g, blocks in enumerate(model_depths(model)):
        for b in range(blocks):
            hk = f"block_group_{g}/~/block_{b}/~/"
            pt = f"layer{g + 1}.{b}."
            for i in range(3):
                conv(f"{hk}conv_{i}", f"{pt}conv{i + 1}")
                bn(f"{hk}batchnorm_{i}", f"{pt}bn{i + 1}")
            if b == 0:
                conv(f"{hk}shortcut_conv", f"{pt}downsample.0")
                bn(f"{hk}shortcut_batchnorm", f"{pt}downsample.1")
    c = _feat(model)
    for mlp in ("projector", "predictor"):
        params[f"{mlp}/~/linear"] = {"w": rng.standard_normal((c, 32)).astype(np.float32), "b": np.zeros(32, np.float32)}
        params[f"{mlp}/~/batch_norm"] = {"scale": np.ones((1, 32), np.float32), "offset": np.zeros((1, 32), np.float32)}
        params[f"{mlp}/~/linear_1"] = {"w": rng.standard_normal((32, HEAD_DIM)).astype(np.float32)}
        for ema in ("mean_ema", "var_ema"):
            state[f"{mlp}/~/batch_norm/~/{ema}"] = {"counter": np.array(5, np.int32),
                                                    "hidden": np.ones((1, 32), np.float32),
                                                    "average": np.ones((1, 32), np.float32)}
    params["classifier"] = {"w": rng.standard_normal((c, 1000)).astype(np.float32), "b": np.zeros(1000, np.float32)}
    return params, state


def model_depths(model):
    return [len(getattr(model, f"layer{s}")) for s in range(1, model.num_stages + 1)]


def write_byol(model, path, torso="res_net_torso"):
    """`pretrain_res50x1.pkl`: pickle of {'experiment_state': _ByolExperimentState, 'step'},
    Haiku containers as haiku._src.data_structures.frozendict (pickled as (cls, (dict,)))."""
    rng = np.random.default_rng(3)
    params, state = _haiku_params_and_state(model, torso, rng)
    with _modules("haiku._src.data_structures", "byol.byol_experiment", "byol.utils.optimizers") as mods:
        class frozendict(dict):  # noqa: N801 -- haiku's class name
            def __reduce__(self):
                return (frozendict, (dict(self),))

        frozendict.__module__, frozendict.__qualname__ = "haiku._src.data_structures", "frozendict"
        mods["haiku._src.data_structures"].frozendict = frozendict
        state_cls = collections.namedtuple(
            "_ByolExperimentState",
            ["online_params", "target_params", "online_state", "target_state", "opt_state"],
            module="byol.byol_experiment",
        )
        mods["byol.byol_experiment"]._ByolExperimentState = state_cls
        lars = collections.namedtuple("LarsState", ["momentum"], module="byol.utils.optimizers")
        mods["byol.utils.optimizers"].LarsState = lars

        def freeze(tree):
            return frozendict({k: freeze(v) if isinstance(v, dict) else v for k, v in tree.items()})

        experiment = state_cls(
            online_params=freeze(params),
            target_params=freeze({k: {p: v + 1 for p, v in d.items()} for k, d in params.items()}),
            online_state=freeze(state),
            target_state=freeze(state),
            opt_state=lars(momentum=freeze({k: {p: np.zeros_like(v) for p, v in d.items()} for k, d in params.items()})),
        )
        with open(path, "wb") as handle:
            pickle.dump({"experiment_state": experiment, "step": 1_000_000}, handle, protocol=4)
    return path
