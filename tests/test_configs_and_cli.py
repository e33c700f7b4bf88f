"""Configs (the reference recipes) and the command line: outputs, reproducibility, refusals."""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import conftest
from conftest import REPO
from nasdip_jax import overrides
from nasdip_jax import compilations
from nasdip_jax.errors import UserError
from nasdip_jax.fit import dip
from nasdip_jax.report import files
from nasdip_jax.runs import common
from nasdip_jax.runs import restore

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "[a-z]*.py")))


def load_config(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_docstring_starts_with_its_command(path):
  name = os.path.basename(path)[:-3]
  module = load_config(name)
  assert module.__doc__.startswith(f"python -m nasdip_jax.main --config=configs/{name}.py")
  module.get_config()


@pytest.mark.parametrize("name,want", [
    ("denoise", dict(task="denoise", num_steps=3000, lr=0.01, reg_noise_std=1 / 30, ema_decay=0.99,
                     sigma=25.0, channels="rgb", backtrack_db=5.0)),
    ("inpaint", dict(task="inpaint", num_steps=11000, lr=0.001, reg_noise_std=0.03, ema_decay=0.0,
                     keep_fraction=0.5, channels="gray")),
    ("sr2x", dict(task="sr", factor=2, num_steps=2000, lr=0.01, reg_noise_std=0.03)),
    ("sr4x", dict(task="sr", factor=4, num_steps=2000, lr=0.01, reg_noise_std=0.03, ema_decay=0.0)),
    ("sr8x", dict(task="sr", factor=8, num_steps=4000, lr=0.01, reg_noise_std=0.05)),
    # the network-structure study's settings (../shared/reference/network-structure-dip.md)
    ("deblur", dict(task="deblur", blur_sigma=5.0, blur_size=0, boundary="circular",
                    noise_std=0.01, channels="gray", num_steps=3000, lr=0.01, ema_decay=0.99)),
    ("single_pixel", dict(task="single_pixel", compression=4.0, sensing="hadamard",
                          noise_std=0.0, channels="gray", num_steps=3000, lr=0.01)),
    ("regularisation", dict(model="autoencoder", lr=1e-4, num_steps=10000, reg_noise_std=0.0,
                            dropout_keep=0.9, l1=1e-6, l2=1e-4, noise_std=0.1)),
])
def test_recipes_match_the_reference(name, want):
  config = load_config(name).get_config()
  for k, v in want.items():
    assert config[k] == pytest.approx(v) if isinstance(v, float) else config[k] == v, k
  assert config.input_depth == 32 and config.net.channels_down == (128,) * 5
  assert config.net.channels_skip == (4,) * 5 and config.net.upsample == "bilinear"


def _cli(*args, timeout=300):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "nasdip_jax.main", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


def _tiny(**overrides):
  config = load_config("test").get_config()
  config.update(overrides)
  return config


def test_cli_end_to_end_writes_every_output(tmp_path):
  workdir = str(tmp_path / "run")
  r = _cli("--config=configs/test.py", f"--workdir={workdir}", "--config.num_steps=12",
           "--config.task=sr")
  assert r.returncode == 0, r.stderr[-2000:]
  for f in ("restored.png", "restored_best.png", "corrupted.png", "clean.png", "side_by_side.png",
            "psnr.png", "metrics.jsonl", "config.json", "summary.json", "curves.npz"):
    assert os.path.isfile(os.path.join(workdir, f)), f
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  for k in ("task", "image", "psnr_final", "psnr_best", "best_step", "num_params", "steps",
            "steps_per_sec", "compile_seconds", "wall_seconds", "device"):
    assert k in summary, k
  assert summary["task"] == "sr" and summary["steps"] == 12 and summary["image"] == "butterfly.png"
  assert summary["psnr_best"] >= summary["psnr_final"]
  assert json.load(open(os.path.join(workdir, "config.json")))["num_steps"] == 12
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == [0, 5, 10, 11]
  curves = np.load(os.path.join(workdir, "curves.npz"))
  assert curves["psnr"][-1] == pytest.approx(summary["psnr_final"])
  assert Image.open(os.path.join(workdir, "restored.png")).size == (64, 64)
  assert Image.open(os.path.join(workdir, "corrupted.png")).size == (16, 16)
  # without a terminal: what happens and where the result is, one line each, no library noise
  err = r.stderr.splitlines()
  assert "nasdip_jax: compiling the sr step for a 64x64 image..." in err, r.stderr[-2000:]
  assert any(line.startswith("nasdip_jax: sr: 12/12 steps, psnr ") for line in err), err
  assert not [line for line in err if "Waiting for previous save" in line]
  assert r.stdout.splitlines()[-2:] == [f"restored image: {workdir}/restored.png",
                                        f"results in {workdir}"]


def test_overrides_of_fields_pass_and_the_first_unknown_one_is_named():
  config = restore.base_config()
  fine = ["--workdir=/w", "--config.seed=3", "--config.net.channels_down=(8,8)", "--config.image"]
  assert overrides.unknown_field(config, fine) is None
  assert overrides.unknown_field(config, ["--config.seed=3", "--config.sead=1", "--config.x=2"]) \
      == "--config.sead: config has no field 'sead' (did you mean config.seed?)"


@pytest.mark.parametrize("args,message", [
    (("--config=configs/test.py", "--config.seed=2", "--config.num_stepz=3"),
     "nasdip_jax: error: --config.num_stepz: config has no field 'num_stepz' (did you mean "
     "config.num_steps?)"),
    (("--config", "configs/test.py", "--config.net.nope=3"),
     "nasdip_jax: error: --config.net.nope: config.net has no field 'nope'"),
    (("--config=configs/test.py", "--config.image.x=3"),  # ml_collections: a TypeError
     "nasdip_jax: error: --config.image.x: config.image is a str, it has no fields"),
    (("--config=configs/test.py", "--config.lr=abc"),
     "nasdip_jax: error: flag --config.lr=abc: could not convert string to float: 'abc'"),
    (("--config=configs/nope.py",),
     "nasdip_jax: error: cannot load the config file: [Errno 2] No such file or directory: "
     "'configs/nope.py'"),
    (("--config=configs/nope.py", "--config.seed=3"),  # loaded while parsing: was a traceback
     "nasdip_jax: error: cannot load the config file: [Errno 2] No such file or directory: "
     "'configs/nope.py'"),
])
def test_cli_bad_config_is_one_line_error(tmp_path, args, message):
  r = _cli(*args, f"--workdir={tmp_path}/w")
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1] == message
  assert "Traceback" not in r.stderr
  assert not os.path.exists(tmp_path / "w")


def test_cli_makes_the_configs_cpu_devices(tmp_path):
  """ISNAS scores on config.cpu_devices CPU devices, made by main before JAX starts: asking to
  score on more than there are is refused in one line, naming how many there are."""
  r = _cli("--config=configs/isnas_denoise.py", f"--workdir={tmp_path}/w",
           "--config.cpu_devices=3", "--config.score_devices=4")
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1] == (
      "nasdip_jax: error: config.score_devices must be in 0..3 (the local devices), got 4")
  assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize("workdir, message", [
    ("FILE", "--workdir {} is a file, not a directory"),
    ("FILE/sub", "--workdir {} cannot be created ({} is not a writable directory)")])
def test_cli_unusable_workdir_is_one_line_error(tmp_path, workdir, message):
  (tmp_path / "FILE").write_text("")  # was a traceback from Orbax, after compiling
  workdir = str(tmp_path / workdir)
  r = _cli("--config=configs/test.py", f"--workdir={workdir}")
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1] == "nasdip_jax: error: " + message.format(
      workdir, tmp_path / "FILE")


def test_cli_distributed_without_a_cluster_is_one_line_error(tmp_path):
  r = _cli("--config=configs/test.py", f"--workdir={tmp_path}/w", "--distributed")
  assert r.returncode == 1 and "Traceback" not in r.stderr
  line = r.stderr.strip().splitlines()[-1]  # (the middle is JAX's own words)
  assert line.startswith("nasdip_jax: error: --distributed: ") and "coordinator" in line
  assert line.endswith("--coordinator_address, --num_processes and --process_id: "
                       "launch/multihost.md)")
  assert not os.path.exists(tmp_path / "w")


def test_make_workdir_failing_is_a_user_error(tmp_path):
  (tmp_path / "FILE").write_text("")  # a run called from Python, without main's check
  with pytest.raises(UserError, match="cannot be created: Not a directory"):
    files.make_workdir(str(tmp_path / "FILE" / "sub"))


def test_cli_missing_image_is_one_line_error(tmp_path):
  r = _cli("--config=configs/test.py", f"--workdir={tmp_path}/w", "--config.image=/nope/x.png")
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1] == "nasdip_jax: error: image file not found: /nope/x.png"
  assert not os.path.exists(tmp_path / "w")


def _img(tmp_path, arr, name="img.png"):
  path = str(tmp_path / name)
  Image.fromarray(arr).save(path)
  return path


@pytest.mark.parametrize("make,overrides,match", [
    (lambda t: _img(t, np.zeros((64, 64, 4), np.uint8)), {}, "alpha channel"),
    (lambda t: _img(t, np.zeros((64, 64), np.uint16)), {"channels": "gray"}, "16/32-bit"),
    (lambda t: _img(t, np.zeros((64, 64), np.uint8)), {}, "grayscale but the config expects rgb"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"channels": "gray"}, "RGB but"),
    (lambda t: _img(t, np.zeros((20, 64, 3), np.uint8)), {}, "smaller than the network's 32-px"),
    (lambda t: str(t / "nope.png"), {}, "image file not found"),
    (lambda t: str(t), {}, "matches no image files"),  # a folder is a batch: of no images here
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"task": "deblurring"}, "config.task"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"model": "unet"}, "unknown model"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"task": "sr", "factor": 3}, "factor"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"num_seeds": 0}, "num_seeds"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"execution": "pmap"}, "execution"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"holdout_fraction": 1.0},
     "holdout_fraction must be in \\(0, 1\\)"),
    (lambda t: _img(t, np.zeros((64, 64, 3), np.uint8)), {"num_seeds": 2, "task": "colourise"},
     "config.task"),
])
def test_bad_input_is_refused_before_writing(tmp_path, make, overrides, match):
  workdir = tmp_path / "w"
  config = _tiny(image=make(tmp_path), **overrides)
  with pytest.raises(UserError, match=match) as e:
    restore.run(config, str(workdir))
  assert "\n" not in str(e.value)
  assert not workdir.exists()


@pytest.mark.parametrize("task", sorted(common.DEFAULT_IMAGES))
@pytest.mark.parametrize("channels", ["rgb", "gray"])
def test_bundled_default_image_is_converted_to_the_configs_channels(task, channels):
  """The bundled image of each task loads in either mode (Pillow's conversion where its file
  has the other); a user's own file of the other mode is still refused (above)."""
  path, _, problem = common.load_problem(_tiny(task=task, channels=channels, image=""))
  with Image.open(path) as img:
    want = np.asarray(img.convert("RGB" if channels == "rgb" else "L"), np.float32) / 255.0
  want = want.reshape(want.shape[0], want.shape[1], -1)
  np.testing.assert_array_equal(problem.clean[0], want)


def test_image_too_large_for_memory_is_refused(tmp_path):
  workdir = tmp_path / "w"
  with pytest.raises(UserError, match="MiB available"):
    restore.run(_tiny(memory_limit_mb=1), str(workdir))
  assert not workdir.exists()


def test_same_seed_same_psnr_through_run(tmp_path):
  a = restore.run(_tiny(num_steps=6, seed=3), str(tmp_path / "a"))
  b = restore.run(_tiny(num_steps=6, seed=3), str(tmp_path / "b"))
  assert a["psnr_final"] == b["psnr_final"] and a["psnr_best"] == b["psnr_best"]
  assert a["psnr_input"] == b["psnr_input"]


def test_checkpointed_run_resumes_exactly(tmp_path):
  straight = restore.run(_tiny(num_steps=16, checkpoint_every=0, seed=4), str(tmp_path / "a"))
  workdir = str(tmp_path / "b")
  first = restore.run(_tiny(num_steps=8, checkpoint_every=4, seed=4), workdir)
  assert first["steps"] == 8 and os.path.isdir(os.path.join(workdir, "checkpoint"))
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:  # a row written after the checkpoint
    f.write(json.dumps({"step": 12, "loss": 1.0}) + "\n")
  resumed = restore.run(_tiny(num_steps=16, checkpoint_every=4, seed=4), workdir)
  assert resumed["resumed_from_step"] == 8 and resumed["steps"] == 16
  assert resumed["psnr_final"] == straight["psnr_final"]
  assert resumed["psnr_best"] == straight["psnr_best"]
  np.testing.assert_array_equal(np.load(os.path.join(workdir, "curves.npz"))["psnr"],
                                np.load(str(tmp_path / "a" / "curves.npz"))["psnr"])
  steps = [json.loads(l)["step"] for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert steps == [0, 5, 7, 10, 15]  # 7: the first run's final step; 12 (after it) was dropped
  # reruns of the finished 16-step run: a changed setting and fewer steps are refused, an
  # identical one rewrites its outputs; none of them compiles (compiled programs forgotten, as
  # in a new process)
  dip._FITS.clear()  # pylint: disable=protected-access
  for changes, match in ((dict(seed=5), "other settings \\(seed\\)"),
                         (dict(lr=0.02), "other settings \\(lr\\)"),
                         (dict(num_steps=8), "checkpointed at step 16, past config.num_steps=8")):
    with compilations.counting() as compiled, pytest.raises(UserError, match=match):
      restore.run(_tiny(**{**dict(num_steps=16, checkpoint_every=4, seed=4), **changes}),
                  workdir)
    assert compiled.n == 0, changes
  with compilations.counting() as compiled:
    again = restore.run(_tiny(num_steps=16, checkpoint_every=4, seed=4), workdir)
  assert not [n for n in compiled.names if "train_step" in n or "lambda" in n], compiled.names
  assert again["steps"] == 16 and again["steps_per_sec"] is None
  assert again["psnr_final"] == resumed["psnr_final"] and again["compile_seconds"] == 0.0


def test_a_run_saved_before_a_fit_field_existed_resumes_at_its_default(tmp_path):
  """A saved config without `holdout_fraction` (added later) counts as FitConfig's 0.1: the same
  settings rerun, another value is refused."""
  saved = restore.base_config().to_dict()
  del saved["holdout_fraction"]
  with open(tmp_path / "config.json", "w", encoding="utf-8") as f:
    json.dump(saved, f)
  now = restore.base_config()
  common.check_rerun(str(tmp_path), now.to_dict())
  now.holdout_fraction = 0.2
  with pytest.raises(UserError, match="other settings \\(holdout_fraction\\)"):
    common.check_rerun(str(tmp_path), now.to_dict())


def test_published_model_runs_through_restore(tmp_path):
  config = _tiny(model="nasdip_sr", num_steps=3, task="sr", checkpoint_every=0)
  config.net.channels_down = config.net.channels_up = (8,) * 5
  s = restore.run(config, str(tmp_path / "w"))
  assert s["genotype"] == "119_1001011001011000011000011" and s["steps"] == 3
  with pytest.raises(UserError, match="cannot build"):
    restore.run(_tiny(model="nasdip", genotype="240_" + "0" * 25), str(tmp_path / "x"))


def test_num_seeds_reports_mean_and_spread_and_seed_runs_equal_single_runs(tmp_path):
  many = restore.run(_tiny(num_steps=6, seed=3, num_seeds=2), str(tmp_path / "seeds"))
  single = restore.run(_tiny(num_steps=6, seed=3), str(tmp_path / "single"))
  assert many["seeds"] == [3, 4] and many["num_seeds"] == 2
  assert many["psnr_final_per_seed"][0] == pytest.approx(single["psnr_final"], abs=1e-4)
  assert many["psnr_final"] == pytest.approx(np.mean(many["psnr_final_per_seed"]))
  assert many["psnr_final_std"] == pytest.approx(np.std(many["psnr_final_per_seed"], ddof=1))
  assert many["psnr_final_std"] > 0  # different seeds, different fits
  for f in ("restored_seed3.png", "restored_seed4.png", "restored_best_seed4.png", "psnr.png",
            "metrics.jsonl", "summary.json", "config.json"):
    assert os.path.isfile(tmp_path / "seeds" / f), f
  curves = np.load(tmp_path / "seeds" / "curves.npz")
  assert curves["psnr"].shape == (2, 6)
  np.testing.assert_allclose(curves["psnr"][:, -1], many["psnr_final_per_seed"], atol=1e-6)


@pytest.mark.parametrize("task,overrides,field", [
    ("denoise", dict(mask="m.png"), "mask"), ("denoise", dict(factor=2), "factor"),
    ("sr", dict(sigma=50.0), "sigma"), ("inpaint", dict(factor=8), "factor"),
    ("sr", dict(keep_fraction=0.3), "keep_fraction")])
def test_a_setting_the_task_ignores_is_refused_before_writing(tmp_path, task, overrides, field):
  with pytest.raises(UserError, match=f"config.{field} is for task"):
    restore.run(_tiny(task=task, **overrides), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_every_written_json_is_strict_json(tmp_path):
  """Without noise the observation is the clean image: its PSNR is infinite, written as null."""
  s = restore.run(_tiny(num_steps=4, sigma=0.0, checkpoint_every=2), str(tmp_path / "w"))
  assert s["psnr_input"] == float("inf")  # the returned summary keeps the value
  assert json.load(open(tmp_path / "w" / "summary.json"))["psnr_input"] is None
  assert conftest.assert_strict_json(str(tmp_path / "w")) >= 3  # config, summary, metrics
