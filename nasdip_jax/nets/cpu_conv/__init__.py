"""CPU speed engineering for convolutions: exact reformulations of the convolutions XLA:CPU runs
slowly, and the functions that decide which runs where, with every threshold named here beside
the measurement that set it (benchmarks/README.md has the runs). Off CPU, 'auto' always picks
XLA's convolution: accelerators never reach these kernels unless a config asks for one.

  gemm.py      convolution as matrix products (im2col) with a custom VJP
  winograd.py  3x3 stride-1 convolution by Winograd F(2x2, 3x3), padding inside its tiles
  shifted.py   depthwise convolution as the sum of k * k shifted products
"""

import jax

from nasdip_jax.nets.cpu_conv import winograd

IMPLS = ("auto", "xla", "gemm", "winograd")
PATHS = ("xla", "gemm", "winograd", "shifted")

# 1x1 layers as one matrix product from this many pixels (128->128 at 512 px, fwd+bwd on 2
# cores: 0.43 s against 1.43 s for XLA's convolution)
GEMM_1X1_MIN_PIXELS = 32 * 32
# 3x3 stride-1 layers by Winograd from this many pixels (132->128 at 256 px, fwd+bwd: 0.52 s
# against 0.90 s; at 64x64 and below it does not gain) ...
WINOGRAD_MIN_PIXELS = 128 * 128
# ... and, in layers nothing differentiates, from this many (128->128 forward: 7.9 against
# 15 ms at 64 px, 2.5 against 3.6 ms at 32 px, equal at 16 px)
WINOGRAD_MIN_PIXELS_FORWARD = 32 * 32
# forward-only 'same' convolutions of inputs with a side of at most this many pixels as one
# matrix product: XLA:CPU runs a kernel about as large as its input as a slow generic
# convolution (5x5, 128 -> 512 channels on four 4x4 inputs: 79 ms against 1.2 ms)
SMALL_SIDE = 4


def on_cpu() -> bool:
  return jax.default_backend() == "cpu"


def select(impl: str, kernel: int, stride: int, dilation: int, height: int, width: int, *,
           depthwise: bool = False, grouped: bool = False, member_batched: bool = False,
           forward_only: bool = False) -> str:
  """How a same-padded convolution of an HxW input runs: one of PATHS.

  depthwise: one filter per channel (groups == channels); grouped: other grouped convolutions
  (always XLA's). member_batched: the layer runs vmapped over cohort members; forward_only:
  nothing differentiates it (the ISNAS scorer's random outputs).
  'winograd' applies to 3x3 stride-1 layers with an even output and falls back to 'xla'
  elsewhere; 'gemm' applies to every ungrouped layer. 'auto' picks, on CPU:
  - depthwise stride-1 layers as shifted products (any impl but 'xla'): XLA:CPU runs grouped
    convolutions slowly (7x7, 128 channels, five 64x64 images: 131 ms against 9 ms forward,
    444 against 196 ms with both gradients);
  - Winograd for 3x3 stride-1 layers from WINOGRAD_MIN_PIXELS (WINOGRAD_MIN_PIXELS_FORWARD
    when forward_only);
  - a matrix product for 1x1 layers from GEMM_1X1_MIN_PIXELS;
  - matrix products for every other member_batched layer: XLA turns a vmapped convolution into
    a grouped one, which its CPU backend runs slowly (4 skip networks at 64 px: 8.5 vs 14
    member-steps/s);
  - XLA's convolution otherwise (stride-2 layers: im2col loses to it at every size).
  Other backends use XLA's convolution.
  """
  if impl not in IMPLS:
    raise ValueError(f"conv_impl must be one of {IMPLS}, got {impl!r}")
  if depthwise or grouped:
    shifted = depthwise and stride == 1 and impl != "xla" and (impl != "auto" or on_cpu())
    return "shifted" if shifted else "xla"
  fits_winograd = winograd.supported(kernel, stride, dilation, height, width)
  if impl == "winograd":
    return "winograd" if fits_winograd else "xla"
  if impl != "auto":
    return impl
  if not on_cpu():
    return "xla"
  pixels = height * width
  min_pixels = WINOGRAD_MIN_PIXELS_FORWARD if forward_only else WINOGRAD_MIN_PIXELS
  if fits_winograd and pixels >= min_pixels:
    return "winograd"
  if member_batched or (kernel == 1 and stride == 1 and pixels >= GEMM_1X1_MIN_PIXELS):
    return "gemm"
  return "xla"


def select_forward_same(kernel: int, height: int, width: int, *, depthwise: bool = False,
                        grouped: bool = False) -> str:
  """How the ISNAS scorer's forward-only, zero-padded stride-1 convolutions (after the taps
  that read only padding are dropped) run: depthwise ones as shifted products on CPU, 1x1
  kernels as one matrix product everywhere, inputs with a side of at most SMALL_SIDE as one
  matrix product on CPU, the rest as XLA's convolution. (Training keeps `select`'s paths:
  their programs compile faster.)"""
  if depthwise or grouped:
    return "shifted" if depthwise and on_cpu() else "xla"
  if kernel == 1 or (on_cpu() and min(height, width) <= SMALL_SIDE):
    return "gemm"
  return "xla"
