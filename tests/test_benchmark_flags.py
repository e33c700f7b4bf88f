"""benchmarks/*.py refuse bad flags (absl's one-line error, exit code 1) before anything runs."""

import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

# Per script: accepted argument lists, then refused ones with a piece of their message.
CASES = {
    "isnas_speed": (
        [["--sizes=64,256", "--num=5,6", "--chains=used,all", "--init_prng=threefry2x32"],
         ["--sizes=32", "--num=1", "--devices=1,2", "--threads=2"]],
        [(["--sizes=50", "--num=5"], "multiples of 32"),
         (["--sizes=abc", "--num=5"], "--sizes takes comma-separated integers"),
         (["--sizes=64,256", "--num=1000"], "need as many entries"),
         (["--devices=0"], "--devices takes"),
         (["--chains=foo"], "['used', 'all']"),
         (["--init_prng=foo"], "hash32"),
         (["--width=0"], "positive")]),
    "cohort_speed": (
        [["--sizes=64", "--members=1,4", "--executions=loop,vmap"]],
        [(["--executions=pmap"], "shard_map"), (["--members=0"], "--members takes"),
         (["--sizes=63"], "multiples of 32")]),
    "dip_speed": ([["--conv_impls=auto,gemm", "--rounds=1"]],
                  [(["--conv_impls=fft"], "winograd"), (["--rounds=0"], "positive")]),
    "space_scan": ([["--px=96", "--static=0"]],
                   [(["--px=48"], "multiple of 32"), (["--num=0"], "positive")]),
    "rl_search": ([["--arms=random,controller"]], [(["--arms=foo"], "controller+prefilter")]),
    "pnp_tuning": ([["--settings=0.05:30:1,0.02:100:1.05", "--denoisers=nlm,bm3d"]],
                   [(["--settings=0.05:30"], "rho:rounds:growth"),
                    (["--settings=0.05:30:0.9"], "growth >= 1"),
                    (["--denoisers=wavelet"], "['nlm', 'bm3d']")]),
    "early_stopping": ([["--holdout_tasks=", "--tasks=denoise25"]],
                       [(["--tasks="], "--tasks takes"), (["--holdout_tasks=sr2"], "inpaint50")]),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_flags_are_checked_when_parsed(script):
  accepted, refused = CASES[script]
  code = textwrap.dedent(f"""\
      from absl import flags
      import benchmarks.{script}
      for argv in {accepted!r}:
        flags.FLAGS(["prog"] + argv)
        flags.FLAGS.unparse_flags()
      for argv, _ in {refused!r}:
        try:
          flags.FLAGS(["prog"] + argv)
          print("ACCEPTED", argv)
        except flags.IllegalFlagValueError as e:
          print("REFUSED", str(e).replace(chr(10), " "))
        flags.FLAGS.unparse_flags()
      """)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       check=True).stdout.splitlines()
  assert len(out) == len(refused), out
  for line, (argv, piece) in zip(out, refused):
    assert line.startswith("REFUSED") and piece in line, (argv, line)


@pytest.mark.parametrize("argv, message", [
    # (unchecked, this one stopped at once with a traceback: a broken check cannot start a run)
    (["benchmarks/isnas_speed.py", "--devices=0", "--sizes=64", "--num=1"],
     "FATAL Flags parsing error: flag --devices=['0']: --devices takes comma-separated integers "
     ">= 1"),
    (["benchmarks/dip_quality.py", "--data_dir=/no such dir", "--crop=32"],
     "dip_quality.py: error: image file not found: /no such dir/Set9/image_F16_512rgb.png")])
def test_a_refused_benchmark_exits_with_one_line(argv, message):
  r = subprocess.run([sys.executable] + argv, cwd=REPO, capture_output=True, text=True,
                     check=False)
  assert r.returncode == 1
  assert message in r.stderr.splitlines(), r.stderr[-2000:]
  assert "Traceback" not in r.stderr
