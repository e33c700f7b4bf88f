"""One module per kind of run, each with `run(config, workdir)`; `config.run` picks one."""

import importlib

from nasdip_jax.errors import UserError

RUNS = {"restore": "nasdip_jax.runs.restore", "isnas": "nasdip_jax.runs.isnas",
        "nas_dataset": "nasdip_jax.runs.nas_dataset", "rl_search": "nasdip_jax.runs.rl_search"}


def get_run(name: str):
  if name not in RUNS:
    raise UserError(f"unknown run {name!r}; choose from {sorted(RUNS)}")
  return importlib.import_module(RUNS[name]).run
