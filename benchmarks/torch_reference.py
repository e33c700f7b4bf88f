"""The reference DIP skip network and step in PyTorch, for interleaved speed comparisons only
(on the GPU where PyTorch sees one, as the reference scripts run).

Same topology as deep-image-prior models/skip.py with the standard configuration (5 levels of 128,
skip 4, bilinear, reflection padding, stride-2 downsampling); the step does the work of the
reference denoising closure (NAS-DIP DIP/denoising.py): z + reg noise -> net -> MSE -> backward,
EMA of outputs, PSNR(noisy, out), PSNR(gt, out) and PSNR(gt, EMA) in numpy float64, the
backtracking snapshot of the weights, and the Adam step.
"""

import numpy as np
import torch
from torch import nn


def _block(i, o, k, stride=1):
  return [nn.ReflectionPad2d((k - 1) // 2), nn.Conv2d(i, o, k, stride), nn.BatchNorm2d(o),
          nn.LeakyReLU(0.2)]


class _Level(nn.Module):

  def __init__(self, d_in, deeper, width=128, skip=4):
    super().__init__()
    self.skip = nn.Sequential(*_block(d_in, skip, 1))
    self.down = nn.Sequential(*_block(d_in, width, 3, 2), *_block(width, width, 3))
    self.deeper = deeper
    self.up = nn.Sequential(nn.BatchNorm2d(skip + width), *_block(skip + width, width, 3),
                            *_block(width, width, 1))

  def forward(self, x):
    d = self.down(x)
    if self.deeper is not None:
      d = self.deeper(d)
    d = nn.functional.interpolate(d, scale_factor=2, mode="bilinear")
    return self.up(torch.cat([self.skip(x), d], 1))


def skip_net(in_ch=32, out_ch=3, levels=5):
  net = None
  for i in reversed(range(levels)):
    net = _Level(in_ch if i == 0 else 128, net)
  return nn.Sequential(net, nn.Conv2d(128, out_ch, 1), nn.Sigmoid())


class ReferenceStep:
  """The reference denoising closure (EMA 0.99, reg noise 1/30) on a random image."""

  def __init__(self, px, seed=0):
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # as the reference, on a GPU
    torch.backends.cudnn.benchmark = True  # the reference's setting
    self.net = skip_net().to(device)
    self.z = (torch.rand(1, 32, px, px) * 0.1).to(device)
    self.target = torch.rand(1, 3, px, px).to(device)
    self.target_np = self.target.cpu().numpy()[0]
    self.clean_np = np.random.default_rng(seed).random((3, px, px)).astype(np.float32)
    self.opt = torch.optim.Adam(self.net.parameters(), lr=0.01)
    self.ema = None

  @staticmethod
  def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))

  def __call__(self):
    self.opt.zero_grad()
    out = self.net(self.z + torch.randn_like(self.z) / 30)
    with torch.no_grad():
      self.ema = out.detach() if self.ema is None else 0.99 * self.ema + 0.01 * out.detach()
    loss = nn.functional.mse_loss(out, self.target)
    loss.backward()
    out_np, ema_np = out.detach().cpu().numpy()[0], self.ema.cpu().numpy()[0]
    psnrs = (self._psnr(self.target_np, out_np), self._psnr(self.clean_np, out_np),
             self._psnr(self.clean_np, ema_np))
    self.snapshot = [p.detach().clone() for p in self.net.parameters()]
    self.opt.step()
    return float(loss.detach()), psnrs
