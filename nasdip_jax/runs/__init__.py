"""One module per kind of run, each with `run(config, workdir)`; `config.run` picks one."""

import importlib

from nasdip_jax.errors import UserError

RUNS = {"restore": "nasdip_jax.runs.restore", "isnas": "nasdip_jax.runs.isnas",
        "nas_dataset": "nasdip_jax.runs.nas_dataset", "rl_search": "nasdip_jax.runs.rl_search",
        "regularisation": "nasdip_jax.runs.regularisation", "study": "nasdip_jax.runs.study"}


def _module(name: str):
  if name not in RUNS:
    raise UserError(f"unknown run {name!r}; choose from {sorted(RUNS)}")
  return importlib.import_module(RUNS[name])


def get_run(name: str):
  """`run(config, workdir) -> summary` of a kind of run."""
  return _module(name).run


def get_check(name: str):
  """`check(config)`: everything that kind of run checks before it writes or compiles
  (UserError on bad input), for launchers that check many configs first."""
  return _module(name).check
