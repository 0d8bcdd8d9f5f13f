"""The paper's initializations: where the authors publish them and how to read them.

URLs are the ones the authors (or the benchmark's README, for files the authors host behind a
console link) publish. sha256 is recorded only where it is published -- torchvision's file names
carry the first 8 hex digits of the sha256 -- otherwise None: `weights fetch` then records the
digest of the first download next to the file and verifies every later download against it.

Sizes bound every download (`size_limit`): the exact size where it is known (torchvision's
resnet50-19c8e357.pth is 102,502,400 bytes), else an upper bound per format, from what a
ResNet-50 release of that format holds (float32: 25.6 M parameters with the fc = 98 MiB).
"""

from __future__ import annotations

import dataclasses

from tfmedbench.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_NORMALIZATION = {
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "note": "the paper fine-tunes every initialization with ImageNet mean/std",
}
BENCHMARK_CITATION = (
    "Hosseinzadeh Taher, Haghighi, Feng, Gotway, Liang. A Systematic Benchmarking Analysis of "
    "Transfer Learning for Medical Image Analysis. MICCAI DART 2021 (arXiv:2108.05930)"
)
ZENODO = "https://zenodo.org/record/5205234/files/{}?download=1"
FAIR = "https://dl.fbaipublicfiles.com/"
PYCONTRAST = "https://www.dropbox.com/sh/87d24jqsl6ra7t2/{}"
SIMCLR_V2 = "https://storage.googleapis.com/simclr-checkpoints/simclrv2/pretrained/r50_1x_sk0/"


@dataclasses.dataclass(frozen=True)
class SourceFile:
    url: str  # as published
    filename: str  # the original file name
    sha256: str | None = None
    sha256_prefix: str | None = None  # torchvision publishes the first 8 hex digits
    size: int | None = None  # exact size in bytes, where known; else FORMAT_MAX_BYTES bounds it


@dataclasses.dataclass(frozen=True)
class Record:
    name: str
    paper_name: str
    category: str
    format: str | None
    files: tuple = ()  # SourceFile, all needed (a TF checkpoint is several files)
    alternatives: tuple = ()  # equivalent single files (e.g. a newer torchvision re-upload)
    aliases: tuple = ()
    citation: str = ""
    normalization: dict = dataclasses.field(default_factory=lambda: dict(PAPER_NORMALIZATION))
    manual: str | None = None  # set when the host needs a browser: what to download by hand
    notes: str = ""

    def as_dict(self):
        return dataclasses.asdict(self)


MiB = 1 << 20
# Upper bound of one source file per format: what the release holds, with ~2x headroom.
FORMAT_MAX_BYTES = {
    "torchvision": 256 * MiB,  # the state dict alone: 98 MiB
    "barlow": 256 * MiB,  # backbone only
    "swav": 512 * MiB,  # + projection head and prototypes
    "moco": 1024 * MiB,  # query + key encoders, queue, optimizer state: ~350 MiB
    "inat2021": 1024 * MiB,  # 10000-way fc (+80 MiB) and optimizer state
    "benchmark": 1024 * MiB,  # model + optimizer state
    "pycontrast": 2048 * MiB,  # + EMA model and the 1.28 M x 128 memory bank (625 MiB)
    "byol": 2048 * MiB,  # online + target params, LARS state
    "simclr-tf": 2048 * MiB,  # checkpoint + Momentum slots (+ TF-Hub export in the v1 zip)
    "simclr-torch": 1024 * MiB,
}


def size_limit(record, spec):
    """The most bytes `spec` (a file of `record`) may have: exact size, else the format's bound."""
    return spec.size or FORMAT_MAX_BYTES.get(record.format, 2048 * MiB)


def _fair(path, filename=None):
    return (SourceFile(FAIR + path, filename or path.rsplit("/", 1)[-1]),)


def _simclr_norm():
    return {
        **PAPER_NORMALIZATION,
        "pretraining": "SimCLR pre-trains on RGB in [0, 1] WITHOUT mean/std normalisation",
        "note": "the paper nevertheless fine-tunes it with ImageNet mean/std, like every other model",
    }


RECORDS = (
    Record("random", "Random (scratch)", "baseline", None,
           citation="He et al. Delving Deep into Rectifiers. ICCV 2015 (kaiming init, torchvision)",
           notes="torchvision initialisation; nothing to download"),
    Record(
        "imagenet", "Supervised ImageNet (torchvision)", "supervised", "torchvision",
        files=(SourceFile("https://download.pytorch.org/models/resnet50-19c8e357.pth",
                          "resnet50-19c8e357.pth", sha256_prefix="19c8e357", size=102_502_400),),
        alternatives=(SourceFile("https://download.pytorch.org/models/resnet50-0676ba61.pth",
                                 "resnet50-0676ba61.pth", sha256_prefix="0676ba61"),),
        aliases=("supervised", "imagenet-supervised"),
        citation="He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016",
    ),
    Record(
        "inat2021", "iNat2021 (supervised)", "supervised", "inat2021",
        files=(SourceFile("https://cornell.box.com/s/bnyhq5lwobu6fgjrub44zle0pyjijbmw",
                          "inat2021_supervised_large.pth.tar"),),
        citation="Van Horn et al. Benchmarking Representation Learning for Natural World Image "
                 "Collections (NeWT). CVPR 2021",
        manual="the NeWT release is a Box folder (browser only): download "
               "inat2021_supervised_large.pth.tar from https://github.com/visipedia/newt",
    ),
    Record(
        "inat2021-mini", "iNat2021 mini (supervised)", "supervised", "inat2021",
        files=(SourceFile("https://cornell.box.com/s/bnyhq5lwobu6fgjrub44zle0pyjijbmw",
                          "inat2021_supervised_mini.pth.tar"),),
        citation="Van Horn et al. Benchmarking Representation Learning for Natural World Image "
                 "Collections (NeWT). CVPR 2021",
        manual="the NeWT release is a Box folder (browser only): download "
               "inat2021_supervised_mini.pth.tar from https://github.com/visipedia/newt",
    ),
    Record("insdis", "InsDis", "self-supervised", "pycontrast",
           files=(SourceFile(PYCONTRAST.format("AACcsSIt1_Njv7GsmsuzZ6Sta/InsDis.pth"), "InsDis.pth"),),
           citation="Wu, Xiong, Yu, Lin. Unsupervised Feature Learning via Non-Parametric Instance "
                    "Discrimination. CVPR 2018 (PyContrast release)"),
    Record("moco-v1", "MoCo-v1", "self-supervised", "moco",
           files=_fair("moco/moco_checkpoints/moco_v1_200ep/moco_v1_200ep_pretrain.pth.tar"),
           aliases=("mocov1",),
           citation="He, Fan, Wu, Xie, Girshick. Momentum Contrast for Unsupervised Visual "
                    "Representation Learning. CVPR 2020"),
    Record("moco-v2", "MoCo-v2", "self-supervised", "moco",
           files=_fair("moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar"),
           aliases=("mocov2",),
           citation="Chen, Fan, Girshick, He. Improved Baselines with Momentum Contrastive "
                    "Learning. arXiv:2003.04297, 2020"),
    Record("pcl-v1", "PCL-v1", "self-supervised", "moco",
           files=(SourceFile("https://storage.googleapis.com/sfr-pcl-data-research/PCL_checkpoint/"
                             "PCL_v1_epoch200.pth.tar", "PCL_v1_epoch200.pth.tar"),),
           citation="Li, Zhou, Xiong, Hoi. Prototypical Contrastive Learning of Unsupervised "
                    "Representations. ICLR 2021"),
    Record("pcl-v2", "PCL-v2", "self-supervised", "moco",
           files=(SourceFile("https://storage.googleapis.com/sfr-pcl-data-research/PCL_checkpoint/"
                             "PCL_v2_epoch200.pth.tar", "PCL_v2_epoch200.pth.tar"),),
           citation="Li, Zhou, Xiong, Hoi. Prototypical Contrastive Learning of Unsupervised "
                    "Representations. ICLR 2021"),
    Record("pirl", "PIRL", "self-supervised", "pycontrast",
           files=(SourceFile(PYCONTRAST.format("AADN4jKnvTI0U5oT6hTmQZz8a/PIRL.pth"), "PIRL.pth"),),
           citation="Misra, van der Maaten. Self-Supervised Learning of Pretext-Invariant "
                    "Representations. CVPR 2020 (PyContrast release)"),
    Record("simclr-v1", "SimCLR-v1", "self-supervised", "simclr-tf",
           files=(SourceFile("https://storage.cloud.google.com/simclr-gcs/checkpoints/ResNet50_1x.zip",
                             "ResNet50_1x.zip"),),
           citation="Chen, Kornblith, Norouzi, Hinton. A Simple Framework for Contrastive Learning "
                    "of Visual Representations. ICML 2020",
           normalization=_simclr_norm(),
           notes="original TF1 checkpoint; a tonylins/simclr-converter .pth also converts "
                 "(--weights-format simclr-torch)"),
    Record("simclr-v2", "SimCLR-v2 (r50_1x_sk0)", "self-supervised", "simclr-tf",
           files=tuple(SourceFile(SIMCLR_V2 + f, f) for f in (
               "checkpoint", "model.ckpt-250228.index", "model.ckpt-250228.data-00000-of-00001")),
           citation="Chen, Kornblith, Swersky, Norouzi, Hinton. Big Self-Supervised Models are "
                    "Strong Semi-Supervised Learners. NeurIPS 2020",
           normalization=_simclr_norm(),
           notes="original TF1 checkpoint (no selective kernels); a Separius/SimCLRv2-Pytorch "
                 ".pth also converts (--weights-format simclr-torch)"),
    Record("sela-v2", "SeLa-v2", "self-supervised", "swav",
           files=_fair("deepcluster/selav2_400ep_pretrain.pth.tar"),
           citation="Asano, Rupprecht, Vedaldi. Self-labelling via simultaneous clustering and "
                    "representation learning. ICLR 2020 (v2 release by Caron et al. 2020)"),
    Record("infomin", "InfoMin", "self-supervised", "pycontrast",
           files=(SourceFile(PYCONTRAST.format("AAAzMTynP3Qc8mIE4XWkgILUa/InfoMin_800.pth"), "InfoMin_800.pth"),),
           citation="Tian, Sun, Poole, Krishnan, Schmid, Isola. What Makes for Good Views for "
                    "Contrastive Learning? NeurIPS 2020 (PyContrast release)"),
    Record("byol", "BYOL", "self-supervised", "byol",
           files=(SourceFile("https://storage.googleapis.com/deepmind-byol/checkpoints/pretrain_res50x1.pkl",
                             "pretrain_res50x1.pkl"),),
           citation="Grill et al. Bootstrap Your Own Latent: A New Approach to Self-Supervised "
                    "Learning. NeurIPS 2020"),
    Record("deepcluster-v2", "DeepCluster-v2", "self-supervised", "swav",
           files=_fair("deepcluster/deepclusterv2_800ep_pretrain.pth.tar"),
           citation="Caron, Misra, Mairal, Goyal, Bojanowski, Joulin. Unsupervised Learning of "
                    "Visual Features by Contrasting Cluster Assignments. NeurIPS 2020"),
    Record("swav", "SwAV", "self-supervised", "swav",
           files=_fair("deepcluster/swav_800ep_pretrain.pth.tar"),
           citation="Caron, Misra, Mairal, Goyal, Bojanowski, Joulin. Unsupervised Learning of "
                    "Visual Features by Contrasting Cluster Assignments. NeurIPS 2020"),
    Record("barlow", "Barlow Twins", "self-supervised", "barlow",
           files=_fair("barlowtwins/ep1000_bs2048_lrw0.2_lrb0.0048_lambd0.0051/resnet50.pth"),
           aliases=("barlow-twins", "barlowtwins"),
           citation="Zbontar, Jing, Misra, LeCun, Deny. Barlow Twins: Self-Supervised Learning via "
                    "Redundancy Reduction. ICML 2021"),
    Record("chexpert", "CheXpert (in-domain, supervised)", "in-domain", "benchmark",
           files=(SourceFile(ZENODO.format("chexpert.pth.tar"), "chexpert.pth.tar"),),
           citation=BENCHMARK_CITATION),
    Record("chestxray14", "ChestX-ray14 (in-domain, supervised)", "in-domain", "benchmark",
           files=(SourceFile(ZENODO.format("chestxray14.pth.tar"), "chestxray14.pth.tar"),),
           citation=BENCHMARK_CITATION),
    Record("imagenet-chexpert", "ImageNet -> CheXpert (domain-adapted)", "domain-adapted", "benchmark",
           files=(SourceFile(ZENODO.format("ImageNet_chexpert.pth.tar"), "ImageNet_chexpert.pth.tar"),),
           citation=BENCHMARK_CITATION),
    Record("imagenet-chestxray14", "ImageNet -> ChestX-ray14 (domain-adapted)", "domain-adapted", "benchmark",
           files=(SourceFile(ZENODO.format("ImageNet_chestxray14.pth.tar"), "ImageNet_chestxray14.pth.tar"),),
           citation=BENCHMARK_CITATION),
)

BY_NAME = {r.name: r for r in RECORDS}
ALIASES = {alias: r.name for r in RECORDS for alias in r.aliases}


def lookup(name):
    key = str(name).strip().lower().replace("_", "-")
    record = BY_NAME.get(key) or BY_NAME.get(ALIASES.get(key, ""))
    if record is None:
        raise UserError(
            f"unknown weights {name!r}: not a file and not a known initialization; "
            f"`tfmedbench weights list` shows the {len(RECORDS)} names"
        )
    return record
