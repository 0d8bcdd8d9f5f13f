"""The PyTorch references the benchmarks compare against: the same networks as tfmedbench.

- `classifier(num_classes)`: torchvision ResNet-50 (weights_converter.testing.torch_resnet, a
  module-for-module copy of torchvision's) with a fresh `fc` -> sigmoid, as the original code.
- `unet(classes)`: segmentation_models_pytorch `Unet("resnet50")` with its defaults (decoder
  channels 256..16, BN, nearest upsampling, 3x3 head), written here because smp/torchvision do not
  install beside this torch build. Same layer shapes as `tfmedbench.models.unet_resnet50`.

A plain PyTorch training step (Adam, float32 or AMP) for the throughput comparison.
"""

from __future__ import annotations

import torch
from torch import nn

from weights_converter.testing.torch_resnet import ResNet

DECODER_CHANNELS = (256, 128, 64, 32, 16)


class Classifier(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.net = ResNet(num_classes=num_classes)
        nn.init.normal_(self.net.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.net.fc.bias)

    def forward(self, x):
        return torch.sigmoid(self.net(x))


def conv_bn_relu(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv1 = conv_bn_relu(cin + cskip, cout)
        self.conv2 = conv_bn_relu(cout, cout)

    def forward(self, x, skip=None):
        x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class Unet(nn.Module):
    """smp Unet('resnet50', classes=1) + sigmoid."""

    def __init__(self, classes=1):
        super().__init__()
        self.encoder = ResNet()
        del self.encoder.fc, self.encoder.avgpool
        ins = [2048] + list(DECODER_CHANNELS[:-1])
        skips = [1024, 512, 256, 64, 0]
        self.blocks = nn.ModuleList(
            DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, DECODER_CHANNELS)
        )
        self.head = nn.Conv2d(DECODER_CHANNELS[-1], classes, 3, padding=1)

    def forward(self, x):
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))
        f1 = e.layer1(e.maxpool(stem))
        f2 = e.layer2(f1)
        f3 = e.layer3(f2)
        x = e.layer4(f3)
        for block, skip in zip(self.blocks, (f3, f2, f1, stem, None)):
            x = block(x, skip)
        return torch.sigmoid(self.head(x))


def soft_dice_loss(pred, target):
    b = pred.shape[0]
    p, t = pred.reshape(b, -1), target.reshape(b, -1)
    inter = (p * t).sum(1)
    return (1.0 - (2.0 * inter + 1.0) / (p.sum(1) + t.sum(1) + 1.0)).mean()


def bce_loss(pred, target):
    return nn.functional.binary_cross_entropy(pred.clamp(1e-7, 1 - 1e-7), target)


class TorchStep:
    """One training step of `model` (Adam), float32 or AMP, optionally channels-last."""

    def __init__(self, model, images, targets, loss, lr=1e-3, device="cpu", amp=False,
                 channels_last=False):
        self.model = model.to(device).train()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.images = images.to(device).contiguous(memory_format=fmt)
        self.targets = targets.to(device)
        self.loss = loss
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.amp = amp
        self.device = device
        self.scaler = torch.amp.GradScaler(device, enabled=amp) if device != "cpu" else None

    def __call__(self):
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device, dtype=torch.float16, enabled=self.amp):
            pred = self.model(self.images)
        loss = self.loss(pred.float(), self.targets)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        return loss.item()  # host sync each step, as tfmedbench's loop and a typical torch loop
