"""A plain-PyTorch ResNet with torchvision's exact module names, shapes and forward.

torchvision cannot be installed beside this torch build, so the parity tests use this copy of
`torchvision.models.resnet.resnet50` (v1.5: stride on the 3x3 conv; BN eps 1e-5; max-pool padded 1).
`depths` / `width` build tiny networks of the same topology, matching `tfmedbench.models.resnet50`.
"""

from __future__ import annotations

import torch
from torch import nn

EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, depths=(3, 4, 6, 3), width=64, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = width
        for stage, blocks in enumerate(depths, start=1):
            planes = width * 2 ** (stage - 1)
            stride = 1 if stage == 1 else 2
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )
            layers = [Bottleneck(inplanes, planes, stride, downsample)]
            inplanes = planes * EXPANSION
            layers += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self.num_stages = len(depths)

    def features(self, x):
        """Stem output (after relu), the four stage outputs and the pooled features."""
        stem = self.relu(self.bn1(self.conv1(x)))
        out = {"relu": stem}
        x = self.maxpool(stem)
        for stage in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
            out[f"layer{stage}"] = x
        out["pool"] = torch.flatten(self.avgpool(x), 1)
        return out

    def forward(self, x):
        return self.fc(self.features(x)["pool"])


def randomize(model, seed=0):
    """Random weights AND random BN statistics/affine, so a swapped or untransposed tensor shows.


    Conv weights get torchvision's kaiming fan-out init (keeps activations O(1) through the
    depth); BN gamma/beta/mean/var are drawn so that none is the identity default.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
        for m in model.modules():
            if isinstance(m, Bottleneck):
                # Small gains on the last BN of each residual branch, as trained ResNets have
                # (cf. torchvision's zero_init_residual): with gains ~1, 16 random blocks are so
                # ill-conditioned that float32 itself drifts by ~2e-5 (torch fp32 vs fp64).
                n = m.bn3.num_features
                m.bn3.weight.copy_(0.1 + 0.3 * torch.rand(n, generator=gen))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(0.01 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.01 * torch.randn(m.bias.shape, generator=gen))
    _calibrate(model, gen)
    return model.eval()


def _calibrate(model, gen):
    """Give the BNs running statistics near their true input statistics, then jitter them.

    Arbitrary running stats let activations compound through 16 residual blocks (to ~1e3 at full
    size), which makes an absolute tolerance meaningless; a trained network's statistics match its
    activations. One train-mode pass with cumulative averaging records the true batch statistics;
    the jitter (mean +/- 0.1 std, var x U(0.7, 1.3)) keeps them random and non-default.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly the batch statistics
    model.train()
    with torch.no_grad():
        model.features(torch.randn((4, 3, 64, 64), generator=gen))
        for m in bns:
            std = m.running_var.sqrt()
            m.running_mean.add_(0.1 * std * torch.randn(m.num_features, generator=gen))
            m.running_var.mul_(0.7 + 0.6 * torch.rand(m.num_features, generator=gen))
            m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (1,), generator=gen)))
            m.momentum = 0.1


def reference_resnet(depths=(3, 4, 6, 3), width=64, seed=0, num_classes=1000):
    return randomize(ResNet(depths, width, num_classes), seed)


def from_state_dict(state, depths=(3, 4, 6, 3), width=64):
    """Build the eval-mode reference from a backbone state dict (no `fc`, no counters)."""
    model = ResNet(depths, width).eval()
    missing, unexpected = model.load_state_dict(
        {k: torch.as_tensor(v) for k, v in state.items()}, strict=False
    )
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"reference load: missing {missing}, unexpected {unexpected}")
    return model
