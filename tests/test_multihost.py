"""Two processes joined by jax.distributed (2 CPU devices each) run a seed cohort over a 4-device
mesh, exactly as launch/multihost.md documents, and match a single-process run on 4 devices."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from conftest import REPO
from configs import test as test_config
from nasdip_jax.runs import restore


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_process_cohort_matches_single_process(tmp_path):
  workdir = str(tmp_path / "multihost")
  port = _free_port()
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
         "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "true"}  # as conftest
  cmd = [sys.executable, "-m", "nasdip_jax.main", "--distributed",
         f"--coordinator_address=localhost:{port}", "--num_processes=2",
         "--config=configs/test.py", f"--workdir={workdir}", "--config.num_seeds=4",
         "--config.execution=vmap", "--config.num_steps=10"]
  procs = [subprocess.Popen(cmd + [f"--process_id={i}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs
  assert "results in" in outs[0] and "results in" not in outs[1]  # process 0 reports
  multi = json.load(open(os.path.join(workdir, "summary.json"), encoding="utf-8"))
  assert multi["processes"] == 2 and multi["devices"] == 4

  config = test_config.get_config()
  config.num_seeds, config.execution, config.num_steps, config.num_devices = 4, "vmap", 10, 4
  single = restore.run(config, str(tmp_path / "single"))
  assert single["devices"] == 4
  np.testing.assert_allclose(multi["psnr_final_per_seed"], single["psnr_final_per_seed"],
                             atol=1e-3)
  np.testing.assert_allclose(multi["psnr_best_per_seed"], single["psnr_best_per_seed"],
                             atol=1e-3)
