"""What a person watching a run needs to see, on a terminal or in a log file (nohup, CI):
one-line notes (`say`) and progress (`Progress`: a tqdm bar on a terminal; elsewhere a line at
most every `every_seconds` and one at the end)."""

import sys
import time

from tqdm import tqdm

PREFIX = "nasdip_jax: "


def say(message: str) -> None:
  """One line on stderr, at once."""
  print(PREFIX + message, file=sys.stderr, flush=True)


class Progress:
  """Progress towards `total` (`update(done, **shown)`: done so far, values to show)."""

  def __init__(self, total: int, desc: str, unit: str, initial: int = 0,
               every_seconds: float = 30.0):
    self.total, self.desc, self.unit, self.every = total, desc, unit, every_seconds
    self.done = self._logged_done = initial
    self._start = self._logged_at = time.monotonic()
    self._bar = (tqdm(total=total, initial=initial, desc=desc, unit=unit)
                 if sys.stderr.isatty() else None)

  def update(self, done: int, **shown) -> None:
    if self._bar is not None:
      self._bar.update(done - self.done)
      if shown:
        self._bar.set_postfix(**{k: _fmt(v) for k, v in shown.items()})
    elif done >= self.total or time.monotonic() - self._logged_at >= self.every:
      self._line(done, shown)
    self.done = done

  def _line(self, done, shown) -> None:
    now = time.monotonic()
    rate = (done - self._logged_done) / max(now - self._logged_at, 1e-9)
    extra = "".join(f", {k} {_fmt(v)}" for k, v in shown.items())
    say(f"{self.desc}: {done}/{self.total} {self.unit}s{extra}, {rate:.3g} {self.unit}s/s")
    self._logged_done, self._logged_at = done, now

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def _fmt(value) -> str:
  if isinstance(value, float):
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"
  return str(value)
