"""launch/sweep.py: a config's get_sweep() as command lines that nasdip_jax.main parses to it."""

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from nasdip_jax import overrides
from nasdip_jax.runs import common

SWEEP = os.path.join(REPO, "launch", "sweep.py")
# ml_collections loads config files with importlib's deprecated load_module (its code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
NET = (8, 8, 8, 8, 8)


def _entries(tmp_path):
  """Two entries: a user image whose name needs quoting, and other settings."""
  image = str(tmp_path / "a b.png")
  shutil.copy(common.default_image("denoise"), image)
  return [{"seed": 3, "image": image, "net.channels_down": NET},
          {"sigma": 50, "crop_size": 32}]


@pytest.fixture(scope="module")
def sweep():
  """The launcher imported once (it defines absl flags)."""
  spec = importlib.util.spec_from_file_location("launch_sweep", SWEEP)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _config(tmp_path, entries) -> str:
  path = tmp_path / "sweep_config.py"
  path.write_text(textwrap.dedent(f"""\
      from nasdip_jax.runs import restore

      def get_config():
        return restore.base_config()

      def get_sweep():
        return {entries!r}
      """))
  return str(path)


def _launch(*args):
  return subprocess.run([sys.executable, SWEEP, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_commands_parse_to_each_entrys_overrides(sweep, tmp_path):
  entries = _entries(tmp_path)
  path = _config(tmp_path, entries)
  commands = sweep.sweep_commands(path, "/w")
  assert [c[:5] for c in commands] == [
      [sys.executable, "-m", "nasdip_jax.main", f"--config={path}", f"--workdir=/w/{i}"]
      for i in range(2)]
  first = overrides.parse(path, commands[0][5:])
  assert (first.seed, first.image, first.net.channels_down) == (3, entries[0]["image"], NET)
  second = overrides.parse(path, commands[1][5:])
  assert (second.sigma, second.crop_size, second.seed) == (50.0, 32, 0)  # seed: the default


def test_overrides_for_every_entry_and_an_entrys_own_value_wins(sweep, tmp_path):
  path = _config(tmp_path, _entries(tmp_path))
  commands = sweep.sweep_commands(path, "/w", ["--config.seed=7", "--config.num_steps=5"])
  first, second = (overrides.parse(path, c[5:]) for c in commands)
  assert (first.seed, first.num_steps) == (3, 5) and (second.seed, second.num_steps) == (7, 5)


def test_the_shipped_denoising_sweep(sweep):
  """configs/denoise.py's sweep: sigma 15 / 25 / 50 with three seeds each, every entry valid."""
  path = os.path.join(REPO, "configs", "denoise.py")
  configs = [overrides.parse(path, c[5:]) for c in sweep.sweep_commands(path, "/w")]
  assert sorted((c.sigma, c.seed) for c in configs) == [
      (sigma, seed) for sigma in (15.0, 25.0, 50.0) for seed in range(3)]
  assert {c.num_steps for c in configs} == {3000}


@pytest.mark.parametrize("entry,message", [
    ({"image": "/no such dir/x.png"}, "image file not found: /no such dir/x.png"),
    ({"sigma": -5.0}, "config.sigma"),
    ({"task": "sr", "sigma": 50.0}, "config.sigma is for task denoise only")])
def test_an_entry_its_run_would_refuse_stops_the_sweep_before_anything_runs(
    sweep, tmp_path, entry, message):
  path = _config(tmp_path, [{"seed": 1}, entry])
  with pytest.raises(sweep.SweepError, match=message):
    sweep.sweep_commands(path, "/w")


def test_a_bad_entry_stops_the_sweep_before_anything_runs(sweep, tmp_path):
  path = _config(tmp_path, [{"seed": 1}, {"sigmaa": 1.0}])
  with pytest.raises(sweep.SweepError) as e:
    sweep.sweep_commands(path, "/w")
  assert str(e.value) == ("get_sweep()[1] = {'sigmaa': 1.0}: --config.sigmaa: config has no "
                          "field 'sigmaa' (did you mean config.sigma?)")
  out = _launch(f"--config={path}", f"--workdir={tmp_path / 'w'}", "--run")
  assert out.returncode == 1 and out.stdout == ""
  assert out.stderr.strip().startswith("sweep: error: get_sweep()[1]")
  assert len(out.stderr.strip().splitlines()) == 1


def test_printed_commands_and_a_failing_run(tmp_path):
  path = _config(tmp_path, _entries(tmp_path))
  printed = _launch(f"--config={path}", f"--workdir={tmp_path / 'w'}", "--config.num_steps=4")
  assert printed.returncode == 0, printed.stderr[-2000:]
  lines = printed.stdout.strip().splitlines()
  image = str(tmp_path / "a b.png")
  assert [shlex.split(line)[4:] for line in lines] == [
      [f"--workdir={tmp_path / 'w'}/0", "--config.num_steps=4", "--config.seed=3",
       f"--config.image={image}", "--config.net.channels_down=(8, 8, 8, 8, 8)"],
      [f"--workdir={tmp_path / 'w'}/1", "--config.num_steps=4", "--config.sigma=50",
       "--config.crop_size=32"]]
  # run 0 passes every config check, but its workdir is a file: main refuses it, and the sweep
  # stops before run 1
  (tmp_path / "w").mkdir()
  (tmp_path / "w" / "0").write_text("")
  ran = _launch(f"--config={path}", f"--workdir={tmp_path / 'w'}", "--run",
                "--config.net.channels_up=(8, 8, 8, 8, 8)")
  assert ran.returncode == 1
  assert "is a file, not a directory" in ran.stderr, ran.stderr[-2000:]
  assert ran.stderr.strip().splitlines()[-1] == (
      "sweep: error: run 0 failed; the sweep stops (1 not run)")
  assert not os.path.exists(tmp_path / "w" / "1")
