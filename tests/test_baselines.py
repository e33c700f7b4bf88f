"""The classical baselines against independent solvers and hand-derived cases."""

import dataclasses

import bm3d
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
import scipy.optimize
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

from nasdip_jax.baselines import denoisers, pnp_admm, tv_admm
from nasdip_jax.errors import UserError
from nasdip_jax.imaging import operators


def _neumann_gradient(x):
  dv, dh = np.zeros_like(x), np.zeros_like(x)
  dv[:-1] = x[1:] - x[:-1]
  dh[:, :-1] = x[:, 1:] - x[:, :-1]
  return dv, dh


def _neumann_gradient_adjoint(dv, dh):
  x = np.zeros_like(dv)
  x[1:] += dv[:-1]
  x[:-1] -= dv[:-1]
  x[:, 1:] += dh[:, :-1]
  x[:, :-1] -= dh[:, :-1]
  return x


def test_tv_admm_reaches_the_optimum_of_an_independent_solver_on_a_blurred_16x16():
  rng = np.random.default_rng(1)
  kernel = operators.gaussian_kernel(1.0, 5)
  b = (scipy.ndimage.convolve(rng.random((16, 16)), kernel, mode="wrap")
       + 0.05 * rng.standard_normal((16, 16)))
  lam, eps = 0.02, 1e-5

  # TV smoothed by eps: its optimum is within lam * 256 * eps (8e-5 relative) above TV's
  def objective_and_gradient(flat):
    x = flat.reshape(16, 16)
    r = scipy.ndimage.convolve(x, kernel, mode="wrap") - b
    dv, dh = _neumann_gradient(x)
    norm = np.sqrt(dv ** 2 + dh ** 2 + eps ** 2)
    grad = (scipy.ndimage.correlate(r, kernel, mode="wrap")
            + lam * _neumann_gradient_adjoint(dv / norm, dh / norm))
    return 0.5 * np.sum(r ** 2) + lam * np.sum(norm), grad.ravel()

  best = scipy.optimize.minimize(objective_and_gradient, b.ravel(), jac=True, method="L-BFGS-B",
                                 options=dict(maxiter=20000, maxfun=50000, ftol=1e-15,
                                              gtol=1e-9)).fun
  result = tv_admm.tv_admm(operators.Blur.of(kernel), b[None, :, :, None].astype(np.float32),
                           None, lam, iterations=200)
  assert abs(float(result.objective[-1]) - best) / best < 1e-4
  assert result.objective.shape == (200,) and float(result.residual[-1]) < 1e-2


@pytest.mark.parametrize("lam", [0.05, 0.2])
def test_tv_admm_at_the_identity_is_scikit_image_chambolle_with_weight_lambda(lam):
  f = np.random.default_rng(0).random((24, 20))
  reference = denoise_tv_chambolle(f, weight=lam, eps=1e-9, max_num_iter=20000)
  x = tv_admm.tv_admm(operators.Identity(), f[None, :, :, None].astype(np.float32), None, lam,
                      iterations=300).image
  np.testing.assert_allclose(np.asarray(x)[0, :, :, 0], reference, atol=2e-3)


def test_tv_admm_without_a_closed_form_solve_uses_conjugate_gradients():
  rng = np.random.default_rng(2)
  op = operators.RandomDense(8, 8, 40, seed=1)
  x_true = rng.random((1, 8, 8, 1)).astype(np.float32)
  b = op.apply(jnp.asarray(x_true), 1.0)
  lam = 1e-3
  result = tv_admm.tv_admm(op, b, None, lam, iterations=300)
  start = tv_admm.objective(op, b, 1.0, lam, op.adjoint(b, 1.0))
  truth = tv_admm.objective(op, b, 1.0, lam, jnp.asarray(x_true))
  assert float(result.objective[-1]) < min(float(start), float(truth))


def _dense(op, shape):
  eye = np.eye(int(np.prod(shape)), dtype=np.float32).reshape((-1,) + shape)
  return np.stack([np.asarray(op.apply(jnp.asarray(e[None]), 1.0)).ravel() for e in eye], 1)


@pytest.mark.parametrize("rho_growth", [1.0, 1.05])
def test_pnp_admm_with_the_l2_prox_as_denoiser_is_tikhonov_least_squares(rho_growth):
  rng = np.random.default_rng(0)
  op = operators.Hadamard(16, 16, 128, seed=3)
  b = np.asarray(op.apply(jnp.asarray(rng.random((1, 16, 16, 1)), jnp.float32), 1.0))
  lam, rho = 0.1, 0.5
  # the prox of (lam / 2) ||x||^2 at the round's rho: lam / rho = sigma^2
  result = pnp_admm.pnp_admm(op, b, None, lambda y, sigma: y / (1 + sigma ** 2), lam, rho, 200,
                             rho_growth=rho_growth)
  a = _dense(op, (16, 16, 1))
  tikhonov = np.linalg.solve(a.T @ a + lam * np.eye(256), a.T @ b.ravel())
  np.testing.assert_allclose(result.image.ravel(), tikhonov, atol=1e-4)


def test_pnp_admm_hands_the_denoiser_sigma_sqrt_lambda_over_rho():
  seen = []
  pnp_admm.pnp_admm(operators.Identity(), np.zeros((1, 4, 4, 1), np.float32), None,
                    lambda y, sigma: seen.append(sigma) or y, 0.02, 0.5, 3)
  assert seen == pytest.approx([0.2] * 3)
  seen.clear()  # continuation: rho 0.5, 2, 8
  pnp_admm.pnp_admm(operators.Identity(), np.zeros((1, 4, 4, 1), np.float32), None,
                    lambda y, sigma: seen.append(sigma) or y, 0.02, 0.5, 3, rho_growth=4.0)
  assert seen == pytest.approx([0.2, 0.1, 0.05])


def test_the_denoisers_call_their_libraries_as_documented():
  rng = np.random.default_rng(4)
  gray = np.clip(rng.random((1, 32, 32, 1)) * 0.5 + 0.1 * rng.standard_normal((1, 32, 32, 1)),
                 0, 1).astype(np.float32)
  rgb = np.clip(rng.random((1, 32, 32, 3)), 0, 1).astype(np.float32)
  np.testing.assert_allclose(denoisers.bm3d(gray, 0.1)[0, :, :, 0],
                             bm3d.bm3d(gray[0, :, :, 0], sigma_psd=0.1), atol=1e-6)
  np.testing.assert_allclose(denoisers.bm3d(rgb, 0.1)[0], bm3d.bm3d_rgb(rgb[0], sigma_psd=0.1),
                             atol=1e-6)
  np.testing.assert_allclose(
      denoisers.nlm(gray, 0.1)[0, :, :, 0],
      denoise_nl_means(gray[0, :, :, 0], h=0.08, sigma=0.1, patch_size=7, patch_distance=11),
      atol=1e-6)
  np.testing.assert_allclose(denoisers.tv(rgb, 0.3)[0],
                             denoise_tv_chambolle(rgb[0].astype(np.float64), weight=0.09,
                                                  eps=1e-5, channel_axis=-1), atol=1e-6)


def test_bad_baseline_input_is_one_line_errors():
  with pytest.raises(UserError, match="lambda must be > 0"):
    tv_admm.tv_admm(operators.Identity(), np.zeros((1, 4, 4, 1)), None, 0.0)
  with pytest.raises(UserError, match="rho must be > 0"):
    pnp_admm.pnp_admm(operators.Identity(), np.zeros((1, 4, 4, 1)), None, denoisers.nlm, 0.1,
                      -1.0, 5)
  with pytest.raises(UserError, match="rho_growth must be >= 1"):
    pnp_admm.pnp_admm(operators.Identity(), np.zeros((1, 4, 4, 1)), None, denoisers.nlm, 0.1,
                      1.0, 5, rho_growth=0.9)
  with pytest.raises(UserError, match="unknown denoiser 'wavelet'"):
    denoisers.get("wavelet")


def test_bm3d_without_its_package_says_how_to_install_it(without_bm3d):
  del without_bm3d
  with pytest.raises(UserError, match=r'BM3D needs .*pip install -e "\.\[bm3d\]"'):
    denoisers.get("bm3d")


def test_dip_prox_fits_its_network_to_the_iterate_and_k_zero_leaves_it_unchanged():
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from nasdip_jax.fit import dip  # pylint: disable=import-outside-toplevel
  from nasdip_jax.fit import prox  # pylint: disable=import-outside-toplevel
  from nasdip_jax.nets import skip  # pylint: disable=import-outside-toplevel
  cfg = dip.FitConfig(lr=0.05, input_depth=4, reg_noise_std=0.0)
  build = lambda key: skip.SkipNet(4, 1, channels_down=(4, 4), channels_up=(4, 4),
                                   channels_skip=(0, 0), rngs=nnx.Rngs(params=key))
  shape = (1, 16, 16, 1)
  target = np.random.default_rng(0).random(shape).astype(np.float32)
  np.testing.assert_array_equal(prox.DipProx(build, cfg, shape, 0, jax.random.key(0))(
      target, 0.1), target)
  warm = prox.DipProx(build, cfg, shape, 20, jax.random.key(0))
  errors = [float(np.mean((warm(target) - target) ** 2)) for _ in range(3)]
  assert errors[2] < errors[0]  # warm-started: each round continues the last
  with pytest.raises(ValueError, match="backtrack_db=0"):  # its target moves every round
    prox.DipProx(build, dataclasses.replace(cfg, backtrack_db=5.0), shape, 20, jax.random.key(0))
