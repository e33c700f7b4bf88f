"""launch/sweep.py: a config's get_sweep() as command lines that nasdip_jax.main parses to it."""

import importlib.util
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from nasdip_jax import overrides

SWEEP = os.path.join(REPO, "launch", "sweep.py")
# ml_collections loads config files with importlib's deprecated load_module (its code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
ENTRIES = [{"seed": 3, "image": "/no such dir/a b.png", "net.channels_down": (8, 8, 8, 8, 8)},
           {"sigma": 50, "task": "inpaint"}]


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
  path = _config(tmp_path, ENTRIES)
  commands = sweep.sweep_commands(path, "/w")
  assert [c[:5] for c in commands] == [
      [sys.executable, "-m", "nasdip_jax.main", f"--config={path}", f"--workdir=/w/{i}"]
      for i in range(2)]
  first = overrides.parse(path, commands[0][5:])
  assert (first.seed, first.image, first.net.channels_down) == (3, "/no such dir/a b.png",
                                                                (8, 8, 8, 8, 8))
  second = overrides.parse(path, commands[1][5:])
  assert (second.sigma, second.task, second.seed) == (50.0, "inpaint", 0)  # seed: the default


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
  path = _config(tmp_path, ENTRIES)
  printed = _launch(f"--config={path}", f"--workdir={tmp_path / 'w'}")
  assert printed.returncode == 0
  lines = printed.stdout.strip().splitlines()
  assert [shlex.split(line)[4:] for line in lines] == [
      [f"--workdir={tmp_path / 'w'}/0", "--config.seed=3", "--config.image=/no such dir/a b.png",
       "--config.net.channels_down=(8, 8, 8, 8, 8)"],
      [f"--workdir={tmp_path / 'w'}/1", "--config.sigma=50", "--config.task=inpaint"]]
  # run 0's image does not exist: main refuses it, and the sweep stops before run 1
  ran = _launch(f"--config={path}", f"--workdir={tmp_path / 'w'}", "--run")
  assert ran.returncode == 1 and ran.stdout.strip().splitlines() == lines[:1]
  assert "nasdip_jax: error: image file not found: /no such dir/a b.png" in ran.stderr
  assert ran.stderr.strip().splitlines()[-1] == (
      "sweep: error: run 0 failed; the sweep stops (1 not run)")
  assert not os.path.exists(tmp_path / "w" / "1")
