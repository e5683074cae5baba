"""Progress of a study's networks: one line per finished network and the time left, estimated
from the step times the networks measure as they train.

A task reports ``(key, step, total, elapsed)`` as it trains (:class:`ProgressEvent`, sent by
:func:`resnets.studies.pool.report_progress`). The estimate:

- a network that has reported twice has a measured time per step (between its two latest
  reports, so the set-up and the first slow steps are left out) and a set-up time (what its
  first report took beyond its steps);
- a network not started yet costs its *weight* (depth x iterations: the networks of a study
  share their widths, so a step's time grows with the depth) at the measured seconds per unit
  of weight, plus the measured set-up time; once networks have finished, at their whole wall
  time per unit of weight (evaluations and a study's measurements included), and a running
  network's steps are scaled by the finished ones' ratio of wall time to step time;
- the time left is the work left divided by the networks trained at once (never less than the
  longest single network's).

On a terminal a bar counts the networks; elsewhere (a log file, a pipe) only plain lines are
written, a progress line at most every :data:`LINE_EVERY_S` seconds, and never a ``\\r``. A CPU
estimate of an hour or more is announced with a warning as soon as it is measured.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from tqdm import tqdm

LINE_EVERY_S = 30.0  # seconds between progress lines when there is no bar
HOURS_WARNING_S = 3600.0  # a CPU estimate above this is announced as a warning


@dataclass(frozen=True)
class ProgressEvent:
    """``step`` of ``total`` iterations of network ``key`` done, ``elapsed`` seconds after it started."""

    key: str
    step: int
    total: int
    elapsed: float


@dataclass
class _Net:
    weight: float
    reports: list[ProgressEvent] = field(default_factory=list)
    done: bool = False
    started: float | None = None  # on the display's clock
    wall: float | None = None  # seconds from start to result, once finished

    @property
    def overhead(self) -> float | None:
        """A finished network's wall time over the time its steps account for (evaluations, measurements)."""
        s = self.step_s
        if self.wall is None or s is None or s <= 0:
            return None
        return self.wall / (self.reports[-1].total * s)

    @property
    def step_s(self) -> float | None:
        """Measured seconds per step (two reports needed)."""
        if len(self.reports) < 2:
            return None
        a, b = self.reports[-2], self.reports[-1]
        return (b.elapsed - a.elapsed) / (b.step - a.step) if b.step > a.step else None

    @property
    def setup_s(self) -> float | None:
        s = self.step_s
        return None if s is None else max(0.0, self.reports[0].elapsed - s * self.reports[0].step)


def duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """The progress display of one study's pool (main process only)."""

    def __init__(self, *, weights: dict[str, float], finished: int, workers: int, device: str, quiet: bool,
                 describe: Callable[[dict[str, Any]], str], out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.nets = {key: _Net(weight=w) for key, w in weights.items()}  # the networks still to train
        self.total = finished + len(weights)
        self.finished = finished
        self.workers = max(1, min(workers, len(weights) or 1))
        self.cpu = device.split(":")[0] == "cpu"
        self.quiet = quiet
        self.describe = describe
        self.out = out or sys.stdout
        self.clock = clock
        self.last_line = clock()
        self.announced = False
        self.bar = tqdm(total=self.total, initial=finished, unit="net", dynamic_ncols=True, file=sys.stderr,
                        disable=quiet or not sys.stderr.isatty())

    # -- the estimate --------------------------------------------------------------------

    def seconds_left(self) -> float | None:
        """The wall time left (None until a network has measured its step time)."""
        measured = [n for n in self.nets.values() if n.step_s is not None]
        if not measured:
            return None
        per_weight = statistics.fmean(n.step_s * n.reports[-1].total / n.weight for n in measured  # type: ignore[operator]
                                      if n.weight > 0)
        setup = statistics.fmean(n.setup_s for n in measured)  # type: ignore[misc]
        finished = [n for n in self.nets.values() if n.wall is not None and n.weight > 0]
        overheads = [o for n in finished if (o := n.overhead) is not None]
        overhead = statistics.fmean(overheads) if overheads else 1.0
        if finished:  # whole networks timed: their wall time per unit of weight holds every overhead
            per_net = statistics.fmean(n.wall / n.weight for n in finished)  # type: ignore[operator]
            setup, per_weight = 0.0, per_net
        left = []
        for n in self.nets.values():
            if n.done:
                continue
            if n.reports:
                last = n.reports[-1]
                step_s = n.step_s if n.step_s is not None else per_weight * n.weight / last.total / overhead
                left.append((last.total - last.step) * step_s * overhead)
            else:
                left.append(setup + per_weight * n.weight)
        return max(sum(left) / self.workers, max(left, default=0.0))

    # -- events --------------------------------------------------------------------------

    def update(self, event: ProgressEvent) -> None:
        net = self.nets.get(event.key)
        if net is None:
            return
        net.reports.append(event)
        if net.started is None:
            net.started = self.clock() - event.elapsed
        left = self.seconds_left()
        if left is None:
            return
        if not self.announced:
            self.announced = True
            self._announce(left, event)
        elif self.bar.disable and self.clock() - self.last_line >= LINE_EVERY_S:
            self._line(f"progress: {self.finished}/{self.total} networks done; {self._running()}; "
                       f"about {duration(left)} left")
        self.bar.set_postfix_str(f"about {duration(left)} left", refresh=True)

    def _announce(self, left: float, event: ProgressEvent) -> None:
        net = self.nets[event.key]
        head = (f"estimate: about {duration(left)} for the {self.total - self.finished} networks left "
                f"({self.workers} at once; measured {net.step_s:.3g} s/iteration on {event.key})")
        if self.cpu and left >= HOURS_WARNING_S:
            self._line(f"warning: {head}. This is hours on a CPU: shorten it with --iterations N or run it on a GPU "
                       "(--device cuda); Ctrl-C keeps every finished network, and the same --out resumes.")
        else:
            self._line(head)

    def _running(self) -> str:
        running = [f"{k} {n.reports[-1].step}/{n.reports[-1].total}" for k, n in self.nets.items()
                   if n.reports and not n.done]
        return "running " + ", ".join(running) if running else "starting"

    def finish(self, key: str, result: dict[str, Any]) -> None:
        """Network ``key`` finished: its one line, with the count and the time left."""
        net = self.nets.get(key)
        if net is not None:
            net.done = True
            if net.started is not None:
                net.wall = self.clock() - net.started
        self.finished += 1
        self.bar.update(1)
        left = self.seconds_left()
        tail = f" [{self.finished}/{self.total}" + (f", about {duration(left)} left]" if left and
                                                     self.finished < self.total else "]")
        self._line(self.describe(result) + tail)

    def note(self, text: str) -> None:
        self._line(text)

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        if self.quiet:
            return
        if self.bar.disable:
            print(text, file=self.out, flush=True)
        else:
            self.bar.write(text, file=self.out)

    def close(self) -> None:
        self.bar.close()
