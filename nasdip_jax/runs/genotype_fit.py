"""DIP fits of many genotypes, for the searches: one cohort of the dynamic network (one compiled
program for the whole space; the choice on accelerators, where members run vmapped) or one cohort
of static networks per genotype (a compilation each, ~20 s on CPU, but 5-20x faster steps there
than the dynamic program, whose cells run 7x7 masked kernels and compute every upward chain).

    result = fit_genotypes(config, spec, genotypes, problems, keys, num_steps, workdir)
    result.curves["psnr"]   # (len(genotypes) * len(problems), num_steps), genotype-major
"""

import dataclasses
import os

import jax
import numpy as np
from flax import nnx

from nasdip_jax.errors import UserError
from nasdip_jax.fit import cohort
from nasdip_jax.nets import dynamic
from nasdip_jax.nets import nasdip
from nasdip_jax.runs import common
from nasdip_jax.space import codec

NETWORKS = ("auto", "static", "dynamic")


def resolve_network(network: str) -> str:
  """'auto' is 'static' on CPU and 'dynamic' elsewhere."""
  if network not in NETWORKS:
    raise UserError(f"config.network must be one of {NETWORKS}, got {network!r}")
  if network == "auto":
    return "static" if jax.default_backend() == "cpu" else "dynamic"
  return network


@dataclasses.dataclass(frozen=True)
class StaticBuilder:
  """`builder(key, code)`: the static NasDipNet of one genotype (code unused). A value, so equal
  builders share one compiled cohort program."""
  in_ch: int
  out_ch: int
  genotype: object
  width: int

  def __call__(self, key, code):
    del code
    return nasdip.NasDipNet(self.in_ch, self.out_ch, self.genotype, width=self.width,
                            rngs=nnx.Rngs(params=key))


def fit_genotypes(config, spec, genotypes, problems, keys, num_steps: int, workdir: str
                  ) -> cohort.CohortResult:
  """Member g * len(problems) + m is genotypes[g] fitted to problems[m] from keys of that index.

  Uses config's width and network, every fit field (`common.fit_config`; input_depth 0 = the
  image's channels) and the execution fields. Resumable through workdir.
  """
  m = len(problems)
  channels = problems[0].observation.shape[-1]
  input_depth = config.input_depth or channels
  cfg = common.fit_config(config, input_depth=input_depth)
  options = common.cohort_options(config)
  train = lambda build, members, directory: cohort.train(
      cohort.Recipe(build, spec, cfg), members, num_steps, workdir=directory, **options)
  all_problems = [p for _ in genotypes for p in problems]
  if resolve_network(config.network) == "dynamic":
    codes = codec.stack_codes([codec.encode(g, config.width)
                                 for g in genotypes for _ in range(m)])
    return train(dynamic.Builder(input_depth, channels, config.width),
                 cohort.make_members(keys, all_problems, codes), workdir)
  parts = []
  for g, genotype in enumerate(genotypes):
    members = cohort.make_members(keys[g * m:(g + 1) * m], problems)
    parts.append(train(StaticBuilder(input_depth, channels, genotype, config.width), members,
                       os.path.join(workdir, f"genotype_{g:04d}")))
  return _concatenate(parts)


def _concatenate(parts) -> cohort.CohortResult:
  cat = lambda name: np.concatenate([getattr(p, name) for p in parts])
  fit_seconds = sum(p.info.get("fit_seconds", 0.0) for p in parts)
  trained = sum(p.info["members"] - p.info["resumed_members"] for p in parts)
  steps = parts[0].curves["psnr"].shape[-1]
  info = {"execution": parts[0].info["execution"], "network": "static",
          "members": sum(p.info["members"] for p in parts),
          "resumed_members": sum(p.info["resumed_members"] for p in parts),
          "compile_seconds": sum(p.info["compile_seconds"] for p in parts),
          "fit_seconds": fit_seconds,
          "member_steps_per_sec": trained * steps / fit_seconds if trained else None,
          "wall_seconds": sum(p.info["wall_seconds"] for p in parts)}
  return cohort.CohortResult(
      curves={k: np.concatenate([p.curves[k] for p in parts]) for k in parts[0].curves},
      final=cat("final"), best=cat("best"), best_psnr=cat("best_psnr"),
      best_step=cat("best_step"), num_fallbacks=cat("num_fallbacks"), info=info)
