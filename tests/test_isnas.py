"""ISNAS-DIP: the averaging selection on constructed cohorts, the resize, scoring, the recipes and
a tiny end-to-end run through the CLI's run function (with resume)."""

import csv
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import conftest
from nasdip_jax import compilations
from nasdip_jax.errors import UserError
from nasdip_jax.imaging import degrade
from nasdip_jax.nets.cpu_conv import winograd as conv_winograd
from nasdip_jax.nets import dynamic
from nasdip_jax.runs import candidates
from nasdip_jax.runs import isnas as isnas_run
from nasdip_jax.runs import nas_dataset
from nasdip_jax.runs import common
from nasdip_jax.search import hash_prng
from nasdip_jax.search import isnas
from nasdip_jax.search import psd_metrics
from nasdip_jax.space import codec
from nasdip_jax.space import genotype as gt
from test_configs_and_cli import load_config


def _const(values, shape=(4, 4, 1)):
  return np.stack([np.full(shape, v, np.float32) for v in values])


def test_weights_are_min_max_linear():
  np.testing.assert_allclose(isnas.averaging_weights([1, 2, 3, 4]), [1, 2 / 3, 1 / 3, 0])
  np.testing.assert_allclose(isnas.averaging_weights([5, 5]), [1, 1])  # the reference: 0 / 0


def test_selection_picks_the_member_closest_to_the_weighted_average():
  # weights 1, 2/3, 1/3, 0 -> average (0.1 + 0.5 * 2/3 + 0.52 / 3) / 2 = 0.30333
  idx, psnrs, avg = isnas.closest_to_average(_const([0.1, 0.5, 0.52, 0.9]), [1, 2, 3, 4])
  np.testing.assert_allclose(avg, 0.303333, atol=1e-6)
  assert idx == 1  # not the best-ranked member
  np.testing.assert_allclose(psnrs, -10 * np.log10(np.square([0.1, 0.5, 0.52, 0.9] - avg[0, 0, 0])),
                             rtol=1e-5)
  # the worst-ranked member has weight 0 and can still be selected
  idx, _, avg = isnas.closest_to_average(_const([0.1, 0.9, 0.9, 0.5]), [1, 2, 3, 4])
  np.testing.assert_allclose(avg, 0.5, atol=1e-6)
  assert idx == 3


def test_selection_for_rgb_sr_uses_the_y_channel():
  # member 0 matches the average in Y but not in RGB; member 1 the other way round
  avg_rgb = np.array([0.5, 0.5, 0.5], np.float32)
  y = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
  same_y = np.array([0.5 + 0.2 / 0.299, 0.5 - 0.2 / 0.587, 0.5], np.float32)  # Y equal to avg's
  assert y(same_y) == pytest.approx(y(avg_rgb), abs=1e-6)
  near_rgb = np.array([0.55, 0.55, 0.55], np.float32)
  outs = np.stack([np.broadcast_to(c, (4, 4, 3)) for c in (same_y, near_rgb, avg_rgb)])
  values = [1.0, 1.0, 1.0]  # equal weights: the average is the plain mean
  mean = outs.mean(0)
  idx_y, _, _ = isnas.closest_to_average(outs, values, y_channel=True)
  idx_rgb, _, _ = isnas.closest_to_average(outs, values, y_channel=False)
  dy = [abs(y(o[0, 0]) - y(mean[0, 0])) for o in outs]
  drgb = [np.mean((o - mean) ** 2) for o in outs]
  assert idx_y == int(np.argmin(dy)) and idx_rgb == int(np.argmin(drgb)) and idx_y != idx_rgb


def test_resize_is_truncating_pillow_bicubic_to_short_side_64():
  img = np.random.default_rng(0).random((96, 160, 3)).astype(np.float32)
  got = isnas.resize_short_side(img, 64)
  u8 = (img * 255).astype(np.uint8)
  want = np.asarray(Image.fromarray(u8).resize((106, 64), Image.Resampling.BICUBIC)) / 255.0
  assert got.shape == (64, 96, 3)  # 64 x 106, centre-cropped to a multiple of 32
  np.testing.assert_allclose(got, want[:, 5:101], atol=1e-7)


@conftest.DYNAMIC_PROGRAM  # its outputs program is the tiny end-to-end runs' (rgb, 32 px, 16)
def test_scores_are_the_metrics_of_random_outputs_averaged_over_inits_and_noises():
  with jax.default_matmul_precision("highest"):  # the runs' default: their programs
    _check_scores()


def _check_scores():
  from flax import nnx  # pylint: disable=import-outside-toplevel
  img = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
  spec, problem = degrade.make_problem(img, "denoise", np.random.default_rng(0))
  names, width = ("psd db strip mse", "psd 99_per_bw"), 16
  graphdef = nnx.graphdef(dynamic.DynamicNasDipNet(3, 3, width=width, rngs=nnx.Rngs(0)))
  forward = jax.jit(lambda params, z, code: nnx.merge(graphdef, params)(z, code))

  def by_hand(key, genotype, inits, noises):
    """The training network's forward with the scorer's draws (fixed modules from one half of
    each init key, each cell position's k x k parameters from the other, embedded in 7 x 7)."""
    code, kind = codec.encode(genotype, width), codec.cell_kind(genotype.cell)
    init_key, z_key, _ = jax.random.split(key, 3)
    outs = []
    for ik, zk in zip(jax.random.split(init_key, inits), jax.random.split(z_key, inits)):
      fixed_key, cells_key = jax.random.split(hash_prng.from_key(ik))  # the scorer's draws
      net = dynamic.DynamicNasDipNet(3, 3, width=width, rngs=nnx.Rngs(params=fixed_key))
      net.cell_params[...] = jnp.stack([dynamic.embed_kind_params(dynamic.draw_kind_params(
          k, kind, genotype.cell.kernel, width), kind, width)
                                        for k in jax.random.split(cells_key, 9)])
      outs += [forward(nnx.state(net, nnx.Param), z, code)
               for z in 0.1 * jax.random.uniform(zk, (noises, 1, 32, 32, 3))]
    return np.concatenate(outs)

  def want(image, outs):
    return [float(np.mean(psd_metrics.metric(n, image, outs))) for n in names]

  scorer = isnas.make_scorer(spec, problem.observation, (32, 32), width, names)
  other = isnas.make_scorer(spec, 1 - problem.observation, (32, 32), width, names)
  # kinds with and without kernels, k = 1 to 7, pixel shuffle both ways, transposed convolutions
  cell_ids = (5, 139, 230, 273, 318, 60, 57, 279)  # interp conv 3x3 ... t_first split 3x3
  genotypes = [gt.from_name(f"{c}_" + "".join(np.random.default_rng(c).choice(["0", "1"], 25)))
               for c in cell_ids]
  keys = [jax.random.key(i) for i in range(len(genotypes))]
  codes = [codec.encode(g, width) for g in genotypes]
  first = [np.asarray(score(keys[0], codes[0])) for score in (scorer, other)]  # compiles
  with compilations.counting() as compiled:
    scores = [[np.asarray(score(k, c)) for k, c in zip(keys[1:], codes[1:])]
              for score in (scorer, other)]
  # the same programs (draws, output, metrics) for every genotype and both images of a shape
  assert compiled.n == 0, compiled.names
  for i, genotype in enumerate(genotypes):
    outs = by_hand(keys[i], genotype, 1, 1)
    for j, image in enumerate((problem.observation, 1 - problem.observation)):
      got = first[j] if i == 0 else scores[j][i - 1]
      np.testing.assert_allclose(got, want(image, outs), rtol=1e-5, err_msg=gt.to_name(genotype))
  averaged = isnas.make_scorer(spec, problem.observation, (32, 32), width, names, 2, 2)
  with compilations.counting() as compiled:
    got = [np.asarray(averaged(keys[i], codes[i])) for i in range(2)]
  # one network program for every genotype, image, metric list and count of a shape
  assert "jit(output)" not in compiled.names, compiled.names
  for i, genotype in enumerate(genotypes[:2]):
    np.testing.assert_allclose(got[i], want(problem.observation, by_hand(keys[i], genotype, 2, 2)),
                               rtol=1e-5, err_msg=gt.to_name(genotype))
  # several candidates in flight on one device (worker threads under the caller's precision):
  # the same scores in the same order, nothing compiled again
  serial = isnas.score_all(scorer, keys, codes)
  with compilations.counting() as compiled:
    threaded = isnas.score_all(scorer, keys, codes, threads=3)
  assert compiled.n == 0, compiled.names
  np.testing.assert_array_equal(np.stack(threaded), np.stack(serial))
  np.testing.assert_allclose(serial[-1], want(problem.observation, by_hand(keys[-1],
                                                                           genotypes[-1], 1, 1)),
                             rtol=1e-5)
  # calls go round the scorer's devices (the first call runs on all of them at once): the same
  # scores in the same order. One device listed twice: a second CPU device would only compile
  # the same programs once more (~40 s), and which device runs a program does not change it.
  two = isnas.make_scorer(spec, problem.observation, (32, 32), width, names,
                          devices=jax.local_devices()[:1] * 2)
  with compilations.counting() as compiled:
    spread = [np.asarray(two(keys[i], codes[i])) for i in range(3)]  # both, 1, 0
  assert compiled.n == 0, compiled.names
  for i in range(3):
    np.testing.assert_allclose(spread[i], np.asarray(scorer(keys[i], codes[i])), rtol=1e-6,
                               err_msg=gt.to_name(genotypes[i]))
  with pytest.raises(ValueError, match="init_prng"):
    isnas.make_scorer(spec, problem.observation, (32, 32), width, names, init_prng="rbg")
  with pytest.raises(ValueError, match="chains"):
    isnas.make_scorer(spec, problem.observation, (32, 32), width, names, chains="some")


def test_random_outputs_run_their_fixed_3x3_layers_from_32_px_by_winograd(monkeypatch):
  """The scorer's network is never differentiated (its layers `forward_only`): on CPU its 3x3
  stride-1 layers of at least 32x32 go through Winograd (encoder 1's second layer and decoders
  1 and 0 at 64 px); the training network keeps Winograd for 128x128 and more."""
  shapes = []
  winograd = conv_winograd.conv3x3
  monkeypatch.setattr(conv_winograd, "conv3x3",
                      lambda x, w, pad="reflection": shapes.append(x.shape[1:3])
                      or winograd(x, w, pad))
  width, code = 16, codec.encode(gt.from_name("5_" + "1" * 25), 16)
  key, z = jax.random.key(0, impl=hash_prng.IMPL), jnp.zeros((1, 64, 64, 1))
  jax.make_jaxpr(isnas._output_program(width, "used").__wrapped__)(key, z, code)
  cpu = jax.default_backend() == "cpu"
  assert sorted(shapes) == (sorted([(32, 32)] * 3 + [(64, 64)] * 2) if cpu else [])
  shapes.clear()
  from flax import nnx  # pylint: disable=import-outside-toplevel
  net = dynamic.DynamicNasDipNet(1, 1, width=width, rngs=nnx.Rngs(0))
  jax.eval_shape(net, z, code)
  assert not shapes


@pytest.mark.parametrize("name,want", [
    ("isnas_denoise", dict(task="denoise", sigma=25.0, num_steps=1200, resize_short_side=64)),
    ("isnas_inpaint", dict(task="inpaint", keep_fraction=0.5, num_steps=9500, channels="gray",
                           resize_short_side=64)),
    ("isnas_sr4x", dict(task="sr", factor=4, num_steps=4500, resize_short_side=0)),
])
def test_isnas_recipes_match_the_reference(name, want):
  config = load_config(name).get_config()
  for k, v in want.items():
    assert config[k] == v, k
  assert config.lr == 0.01 and config.ema_decay == 0.99 and config.top_n == 15
  assert config.reg_noise_std == pytest.approx(1 / 30) and config.input_depth == 0
  assert config.candidates == "isnas_candidates_5000" and config.num_candidates == 5000
  assert tuple(config.rank_by) == ("psd db strip mse", "psd strip hist emd", "random mse")


def test_the_5000_list_has_408_unbuildable_candidates():
  config = isnas_run.base_config()
  names, genos, skipped = candidates.candidate_genotypes(config)
  assert skipped == 408 and len(genos) == 4592 == len(names)


def _tiny(**overrides):
  c = load_config("isnas_denoise").get_config()
  # the shapes and fit settings of tests/test_cohort.py's dynamic cohort: one cached program
  c.update(candidates="sample", num_candidates=6, width=16, top_n=3, num_steps=2,
           crop_size=32, input_depth=8, ema_decay=0.9, steps_per_call=2, resize_short_side=0,
           rank_by=("psd db strip mse",), checkpoint_every=0, execution="loop", network="dynamic",
           score_devices=1)
  c.update(overrides)
  return c


@conftest.DYNAMIC_PROGRAM
def test_tiny_end_to_end_run_and_resume(tmp_path, capsys):
  workdir = str(tmp_path / "isnas")
  summary = isnas_run.run(_tiny(), workdir)
  # without a terminal, each stage says what it does (and progress ends with a line)
  err = capsys.readouterr().err.splitlines()
  for line in ("nasdip_jax: scoring 6 of 6 candidates at width 16 on a 32x32 image",
               "nasdip_jax: scoring: 6/6 candidates",
               "nasdip_jax: psd db strip mse: training its top 3 for 2 steps at 32x32",
               "nasdip_jax: psd db strip mse: selected "):
    assert any(e.startswith(line) for e in err), (line, err)
  assert summary["restored"] == os.path.join(workdir, "psd_db_strip_mse", "restored.png")
  rows = list(csv.DictReader(open(os.path.join(workdir, "metrics.csv"))))
  assert len(rows) == 6 and set(psd_metrics.SIMILARITY_METRICS) <= set(rows[0])
  scores = np.array([float(r["psd db strip mse"]) for r in rows])
  m = summary["metrics"]["psd db strip mse"]
  top = [rows[i]["name"] for i in np.argsort(scores, kind="stable")[:3]]
  assert m["top_n"] == top and m["selected"] in top and m["final_model"] == m["selected"]
  assert open(os.path.join(workdir, "psd_db_strip_mse", "selected.txt")).read().strip() == \
      m["selected"]
  cohort_rows = list(csv.DictReader(open(os.path.join(workdir, "psd_db_strip_mse",
                                                      "cohort.csv"))))
  assert [r["name"] for r in cohort_rows] == top
  best = max(range(3), key=lambda r: float(cohort_rows[r]["psnr_to_average"]))
  assert cohort_rows[best]["name"] == m["selected"]
  for f in ("restored.png", "average.png", "member_00.png", "psnr.png"):
    assert os.path.isfile(os.path.join(workdir, "psd_db_strip_mse", f)), f
  assert summary["num_scored"] == 6 and np.isfinite(summary["psnr_final"])
  timing = summary["timing"]
  assert timing["score"]["scored"] == 6 and timing["score"]["devices"] == 1
  assert timing["score"]["candidates_per_sec"] > 0
  for fit, members in (("cohort", 3), ("final", 1)):
    t = timing["rankings"]["psd db strip mse"][fit]
    assert t["members"] == members and t["resumed_members"] == 0
    assert t["compile_seconds"] + t["fit_seconds"] <= t["wall_seconds"] < timing["wall_seconds"]
    assert t["member_steps_per_sec"] == pytest.approx(members * 2 / t["fit_seconds"])
  assert conftest.assert_strict_json(workdir) >= 2
  again = isnas_run.run(_tiny(), workdir)  # everything finished: resumed, not recomputed
  assert again["metrics"]["psd db strip mse"] == m
  assert again["timing"]["score"]["scored"] == 0
  redone = again["timing"]["rankings"]["psd db strip mse"]
  assert redone["cohort"]["resumed_members"] == 3 and redone["final"]["resumed_members"] == 1
  assert redone["cohort"]["member_steps_per_sec"] is None  # no member was trained again
  with pytest.raises(UserError, match=r"other settings \(seed, top_n\)"):
    isnas_run.run(_tiny(top_n=2, seed=1), workdir)
  # a ranking added on a rerun: the first one's results are read back, the new one trained
  more = isnas_run.run(_tiny(rank_by=("psd db strip mse", "random mse"), score_threads=1),
                       workdir)
  assert more["metrics"]["psd db strip mse"] == m and more["timing"]["score"]["scored"] == 0
  assert more["timing"]["rankings"]["random mse"]["cohort"]["resumed_members"] == 0
  assert more["metrics"]["random mse"]["selected"] in [r["name"] for r in rows]


@conftest.DYNAMIC_PROGRAM
@pytest.mark.parametrize("save_every,seconds_per_batch,saved", [
    (2, 0.0, 3),      # saved every 2 candidates: after [0] and [1, 2]
    (200, 31.0, 3),   # saved every 30 s: the same
    (200, 0.0, 1)])   # neither: only after the first candidate
def test_scoring_killed_midway_resumes_from_its_last_save(tmp_path, monkeypatch, save_every,
                                                           seconds_per_batch, saved):
  """Scores are saved after the first candidate, then every SCORE_SAVE_EVERY candidates or
  SCORE_SAVE_SECONDS (a fake clock here); a rerun scores only the unsaved ones and ends with
  the uninterrupted run's values."""
  c = _tiny(score_threads=1)  # batches of 2 candidates after the first: [0], [1, 2], [3, 4], [5]
  _, spec, problem = common.load_problem(c)
  _, genotypes, _ = candidates.candidate_genotypes(c)
  whole, workdir = tmp_path / "whole", tmp_path / "killed"
  whole.mkdir(), workdir.mkdir()
  with jax.default_matmul_precision(c.matmul_precision):
    want, _ = candidates.score(c, spec, problem, genotypes, str(whole))
    monkeypatch.setattr(candidates, "SCORE_SAVE_EVERY", save_every)
    real, calls = isnas.score_all, []

    def killed_at_the_third_batch(*args, **kwargs):
      calls.append(len(args[2]))
      if len(calls) == 3:
        raise KeyboardInterrupt
      return real(*args, **kwargs)
    monkeypatch.setattr(isnas, "score_all", killed_at_the_third_batch)
    monkeypatch.setattr(candidates, "_clock", lambda: seconds_per_batch * len(calls))
    with pytest.raises(KeyboardInterrupt):
      candidates.score(c, spec, problem, genotypes, str(workdir))
    with np.load(workdir / "scores.npz") as z:
      assert int(z["done"]) == saved and np.isnan(z["values"][saved:]).all()
    monkeypatch.setattr(isnas, "score_all", real)
    values, timing = candidates.score(c, spec, problem, genotypes, str(workdir))
  assert calls == [1, 2, 2] and timing["scored"] == 6 - saved
  np.testing.assert_allclose(values, want, rtol=1e-6)


@pytest.mark.parametrize("overrides,match", [
    (dict(rank_by=("psd db strip mse", "psd foo mse")), "unknown transformations"),
    (dict(rank_by=("psd 99_per_bw",)), "not in config.table_metrics"),
    (dict(top_n=10), "top_n"),
    (dict(final_model="last"), "final_model"),
    (dict(task="sr", resize_short_side=64), "resized training"),
    (dict(candidates="mine"), "candidates"),
    (dict(init_prng="rbg"), "init_prng"),
    (dict(score_devices=99), "score_devices"),
    (dict(score_threads=-1), "score_threads"),
    (dict(task="sr", crop_size=32), "strip .* holds no frequency of 8x8"),  # 32 px / 4
])
def test_bad_isnas_configs_are_refused(tmp_path, overrides, match):
  c = _tiny()
  if "rank_by" in overrides and overrides["rank_by"] == ("psd 99_per_bw",):
    c.table_metrics = ("psd db strip mse",)
  c.update(overrides)
  with pytest.raises(UserError, match=match):
    isnas_run.run(c, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def _tau_b(x, y):
  """Kendall's tau-b by its definition: (concordant - discordant) pairs over
  sqrt((pairs - ties in x) (pairs - ties in y))."""
  n, c, d, tx, ty = len(x), 0, 0, 0, 0
  for i in range(n):
    for j in range(i + 1, n):
      s = np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
      c, d = c + (s > 0), d + (s < 0)
      tx, ty = tx + (x[i] == x[j]), ty + (y[i] == y[j])
  pairs = n * (n - 1) / 2
  return (c - d) / np.sqrt((pairs - tx) * (pairs - ty))


def test_analysis_of_a_constructed_dataset():
  best = np.array([20.0, 25.0, 22.0, 30.0, 21.0, 27.0])
  final = best - 1.0
  values = np.stack([-best, np.array([3.0, 1.0, 2.0, 6.0, 5.0, 4.0])], axis=1)
  outputs = _const([0.1, 0.5, 0.52, 0.9, 0.3, 0.2])
  names = [f"m{i}" for i in range(6)]
  a = nas_dataset.analyse(names, ["perfect", "other"], values, best, final, outputs, (1, 3))
  assert a["kendall_best"]["perfect"] == pytest.approx(1.0)
  assert a["kendall_final"]["perfect"] == pytest.approx(1.0)
  # -other = (-3, -1, -2, -6, -5, -4) against best (20, 25, 22, 30, 21, 27): of the 15 pairs,
  # 6 concordant ((0, 1), (0, 2), (1, 2), (1, 4), (2, 4), (4, 5)), 9 discordant
  assert a["kendall_best"]["other"] == pytest.approx((6 - 9) / 15)
  assert _tau_b(-values[:, 1], best) == pytest.approx((6 - 9) / 15)
  perfect = a["selection"]["perfect"]
  assert perfect["best_of_top_1"] == 30.0 and perfect["best_of_top_3"] == 30.0
  # top 3 of "perfect": m3 (0.9), m5 (0.2), m1 (0.5) with weights 1, 0.4, 0 -> average 0.7
  assert perfect["selected"] == "m3" and perfect["selected_rank"] == 1
  other = a["selection"]["other"]  # top 3: m1 (25), m2 (22), m0 (20)
  assert other["best_of_top_3"] == 25.0 and other["best_of_top_1"] == 25.0
  assert other["selected_rank"] == 1 + int(np.sum(best > other["selected_psnr_best"]))


def test_nas_dataset_refuses_a_bad_image_before_writing(tmp_path):
  """Every task's image is loaded before the workdir is made: the second one failing (a
  grayscale file for RGB) leaves nothing behind."""
  good = str(tmp_path / "rgb.png")
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
  bad = str(tmp_path / "gray.png")
  Image.fromarray(np.zeros((64, 64), np.uint8)).save(bad)
  c = load_config("nas_dataset").get_config()
  c.update(images=(good, bad), channels="rgb", candidates="sample", num_candidates=2, width=8,
           num_steps=1, num_outputs=1, top_ns=(1,))  # tiny, should the first image ever run
  with pytest.raises(UserError, match="gray.png: is grayscale but the config expects rgb"):
    nas_dataset.run(c, str(tmp_path / "ds"))
  assert not os.path.exists(tmp_path / "ds")


def test_nas_dataset_refuses_two_images_of_one_name(tmp_path):
  """a/x.png and b/x.png would share <task>/x/ and so one dataset: refused before writing."""
  for d in "ab":
    os.makedirs(tmp_path / d)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / d / "x.png")
  c = load_config("nas_dataset").get_config()
  c.update(images=(str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")),
           tasks=("denoise",), candidates="sample", num_candidates=2, width=8, num_steps=1,
           num_outputs=1, top_ns=(1,))  # tiny, should it ever run
  with pytest.raises(UserError, match="two images of the same file name"):
    nas_dataset.run(c, str(tmp_path / "ds"))
  assert not os.path.exists(tmp_path / "ds")


@conftest.DYNAMIC_PROGRAM
def test_tiny_nas_dataset_run(tmp_path):
  c = load_config("nas_dataset").get_config()
  c.update(candidates="sample", num_candidates=4, width=16, num_steps=2, crop_size=32,
           input_depth=8, ema_decay=0.9, steps_per_call=2, checkpoint_every=0, execution="loop",
           tasks=("denoise",), top_ns=(2, 3), num_outputs=1, channels="rgb", network="dynamic",
           score_devices=1)
  workdir = str(tmp_path / "ds")
  summary = nas_dataset.run(c, workdir)
  sub = os.path.join(workdir, "denoise", "default")
  d = np.load(os.path.join(sub, "dataset.npz"))
  assert d["psnr"].shape == (4, 2) and len(d["names"]) == 4
  np.testing.assert_allclose(d["best"], d["psnr"].max(axis=1), atol=1e-5)
  tau = list(csv.DictReader(open(os.path.join(sub, "kendall.csv"))))
  assert [r["metric"] for r in tau] == list(c.table_metrics)
  j = list(c.table_metrics).index("psd db strip mse")
  assert float(tau[j]["tau_best"]) == pytest.approx(_tau_b(-d["values"][:, j], d["best"]))
  assert os.path.isfile(os.path.join(sub, "histogram.png"))
  assert conftest.assert_strict_json(workdir) >= 3
  again = nas_dataset.run(c, workdir)  # resumed: nothing retrained, same analysis
  assert again["per_image"][0]["kendall_best"] == summary["per_image"][0]["kendall_best"]
  assert again["per_image"][0]["member_steps_per_sec"] is None
  c.top_ns = (1,)  # the analysis may change: recomputed from the stored entries
  sel = nas_dataset.run(c, workdir)["per_image"][0]["selection"]["psd db strip mse"]
  assert sel["best_of_top_1"] == d["best"][np.argmin(d["values"][:, j])]
  stamp = os.stat(os.path.join(sub, "dataset.npz")).st_mtime_ns
  c.num_outputs, c.sigma = 2, 15.0  # the entries' settings may not: refused, nothing rewritten
  with pytest.raises(UserError, match=r"other settings \(num_outputs, sigma\)"):
    nas_dataset.run(c, workdir)
  assert os.stat(os.path.join(sub, "dataset.npz")).st_mtime_ns == stamp


@conftest.DYNAMIC_PROGRAM
def test_the_colab_notebook_runs(tmp_path, monkeypatch):
  """launch/colab.ipynb's code cells in order, shrunk by NASDIP_TINY=1 (its search: `_tiny`'s
  settings, so the compiled programs are shared); shell and magic lines become `pass`."""
  notebook = json.load(open(os.path.join(conftest.REPO, "launch", "colab.ipynb")))
  monkeypatch.setenv("NASDIP_TINY", "1")
  monkeypatch.setenv("NASDIP_WORKDIR", str(tmp_path))
  monkeypatch.chdir(conftest.REPO)
  monkeypatch.syspath_prepend(conftest.REPO)
  namespace = {}
  for cell in notebook["cells"]:
    if cell["cell_type"] == "code":
      source = re.sub(r"^(\s*)[!%].*$", r"\1pass", "".join(cell["source"]), flags=re.M)
      exec(compile(source, "colab.ipynb", "exec"), namespace)  # pylint: disable=exec-used
  assert namespace["result"].image.shape == (64, 64, 3)
  assert namespace["result"].stop_step is not None
  assert os.path.isfile(namespace["search"]["restored"])
  assert namespace["search"]["restored"].startswith(str(tmp_path))
