"""Counts XLA compilations through JAX's public monitoring events (no private jit APIs)."""

import contextlib
import dataclasses
import threading

import jax

_EVENT = "/jax/core/compile/backend_compile_duration"  # one per backend compilation


@dataclasses.dataclass
class Count:
  names: list = dataclasses.field(default_factory=list)  # "jit(<function name>)", in order

  @property
  def n(self) -> int:
    return len(self.names)


@contextlib.contextmanager
def counting():
  """`with counting() as c: ...`: c.n is the number of programs compiled inside, in any thread
  of this process (jitted calls served from a cache compile nothing), c.names their names."""
  count, lock = Count(), threading.Lock()

  def listen(event, duration, **kwargs):
    del duration
    if event == _EVENT:
      with lock:
        count.names.append(kwargs.get("fun_name", "?"))

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    yield count
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)
