"""The operator layer against independent truth: dot-product adjoint tests, dense solves,
scipy's Hadamard matrices and scipy.ndimage convolutions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import operators as ops

H = W = 16
MOTION = np.array([[0.0, 0.0, 0.1], [0.2, 0.3, 0.0], [0.4, 0.0, 0.0]])  # asymmetric, odd

OPERATORS = {
    "identity": ops.Identity(),
    "mask": ops.Mask(),
    "downsample": ops.Downsample(2),
    "blur_circular": ops.Blur.of(ops.gaussian_kernel(1.5, 7)),
    "blur_reflect": ops.Blur.of(MOTION, "reflect"),
    "hadamard": ops.Hadamard(H, W, 64, seed=3),
    "hadamard_permuted": ops.Hadamard(H, W, 128, seed=1, permute=True),
    "dense": ops.RandomDense(H, W, 100, seed=0),
}


def _mask(c=2):
  return jnp.asarray((np.random.default_rng(5).random((1, H, W, 1)) > 0.4).astype(np.float32))


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_adjoint_dot_product(name):
  op, mask = OPERATORS[name], _mask()
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((1, H, W, 2)), jnp.float32)
  ax = op.apply(x, mask)
  y = jnp.asarray(rng.standard_normal(ax.shape), jnp.float32)
  aty = op.adjoint(y, mask)
  assert aty.shape == x.shape
  lhs, rhs = float(jnp.vdot(ax, y)), float(jnp.vdot(x, aty))
  assert abs(lhs - rhs) <= 1e-4 * (abs(lhs) + float(jnp.linalg.norm(ax) * jnp.linalg.norm(y)))


def _dense(op, mask, c=1):
  """A as a dense matrix, column by column (H * W * c columns)."""
  n = H * W * c
  basis = jnp.eye(n, dtype=jnp.float32).reshape(n, 1, H, W, c)
  cols = jax.vmap(lambda e: op.apply(e, mask).reshape(-1))(basis)
  return np.asarray(cols, np.float64).T


@pytest.mark.parametrize("name", [n for n in sorted(OPERATORS) if OPERATORS[n].has_solve])
def test_closed_form_solve_matches_dense_solve(name):
  op, mask, rho = OPERATORS[name], _mask(), 0.3
  a = _dense(op, mask)
  r = np.random.default_rng(1).standard_normal((1, H, W, 1))
  want = np.linalg.solve(a.T @ a + rho * np.eye(H * W), r.reshape(-1)).reshape(r.shape)
  got = op.solve(jnp.asarray(r, jnp.float32), rho, mask)
  np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=2e-5 * np.abs(want).max())


def test_every_operator_with_a_closed_form_says_so():
  assert {n for n, op in OPERATORS.items() if op.has_solve} == {
      "identity", "mask", "blur_circular", "hadamard", "hadamard_permuted"}


def test_hadamard_rows_are_scipy_hadamard_rows():
  # Sylvester's H_16 is kron(H_4, H_4): the full 2-D transform of a 4x4 image, pixels row-major.
  op = ops.Hadamard(4, 4, 16, seed=0)
  basis = jnp.eye(16, dtype=jnp.float32).reshape(16, 1, 4, 4, 1)
  a = np.asarray(jax.vmap(lambda e: op.apply(e, None).reshape(-1))(basis)).T
  np.testing.assert_allclose(a, scipy.linalg.hadamard(16) / 4.0, atol=1e-6)
  sub = ops.Hadamard(4, 4, 5, seed=2)
  rows = np.flatnonzero(sub.selection.reshape(-1))
  a_sub = np.asarray(jax.vmap(lambda e: sub.apply(e, None).reshape(-1))(basis)).T
  np.testing.assert_allclose(a_sub[rows], scipy.linalg.hadamard(16)[rows] / 4.0, atol=1e-6)
  assert not np.any(np.delete(a_sub, rows, axis=0))


@pytest.mark.parametrize("cf", [1, 2, 4, 8, 3])
def test_measurement_count_is_n_over_cf_with_dc(cf):
  m = ops.measurement_count(H * W, cf)
  assert m == round(256 / cf)
  sel = ops.Hadamard(H, W, m, seed=7).selection
  assert sel.sum() == m and sel[0, 0] == 1
  assert set(np.unique(sel)) <= {0.0, 1.0}


def test_hadamard_selection_depends_on_seed_only():
  a, b, c = (ops.Hadamard(H, W, 40, seed=s).selection for s in (0, 0, 1))
  np.testing.assert_array_equal(a, b)
  assert np.any(a != c)


def test_circular_gaussian_blur_matches_scipy_wrap():
  sigma, size = 2.0, 13  # gaussian_filter's radius = truncate * sigma = 6
  x = np.random.default_rng(2).random((H + 4, W, 3))
  got = ops.Blur.of(ops.gaussian_kernel(sigma, size)).apply(jnp.asarray(x[None], jnp.float32), None)
  want = scipy.ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="wrap", truncate=3.0)
  np.testing.assert_allclose(np.asarray(got[0]), want, atol=2e-6)


@pytest.mark.parametrize("boundary,mode", [("circular", "wrap"), ("reflect", "reflect")])
def test_asymmetric_kernel_is_a_convolution(boundary, mode):
  x = np.random.default_rng(3).random((H, W + 2, 1))
  got = ops.Blur.of(MOTION, boundary).apply(jnp.asarray(x[None], jnp.float32), None)
  want = scipy.ndimage.convolve(x[..., 0], MOTION / MOTION.sum(), mode=mode)
  np.testing.assert_allclose(np.asarray(got[0, ..., 0]), want, atol=2e-6)


def test_gaussian_kernel_default_size_and_normalisation():
  k = ops.gaussian_kernel(5.0)
  assert k.shape == (31, 31) and abs(k.sum() - 1) < 1e-12
  assert k[15, 15] == k.max() and np.allclose(k, k.T) and np.allclose(k, k[::-1])


def test_downsample_adjoint_shape_and_old_operator():
  from nasdip_jax.imaging import resample
  x = jnp.asarray(np.random.default_rng(4).random((1, H, W, 3)), jnp.float32)
  np.testing.assert_array_equal(ops.Downsample(4).apply(x, None),
                                resample.lanczos2_downsample(x, 4))
  assert ops.Downsample(4).adjoint(jnp.zeros((1, 4, 4, 3)), None).shape == (1, H, W, 3)


@pytest.mark.parametrize("make,message", [
    (lambda: ops.Hadamard(12, 16, 10), "power-of-two sides.*crop it to 16x8"),
    (lambda: ops.measurement_count(256, 0.5), "must be >= 1"),
    (lambda: ops.measurement_count(256, 1000), "leaves no measurement"),
    (lambda: ops.gaussian_kernel(-1.0), "sigma must be > 0"),
    (lambda: ops.Blur.of(np.ones((3,))), "2-D array"),
    (lambda: ops.Blur.of(-np.ones((3, 3))), "non-negative"),
    (lambda: ops.Blur.of(np.ones((3, 3)), "valid"), "boundary must be one of"),
    (lambda: ops.Blur.of(np.ones((21, 21))).apply(jnp.zeros((1, 16, 16, 1)), None),
     "larger than the image"),
    (lambda: ops.RandomDense(128, 128, 8192), "too large"),
])
def test_bad_operator_descriptions_are_one_line_errors(make, message):
  with pytest.raises(UserError, match=message) as e:
    make()
  assert "\n" not in str(e.value)
