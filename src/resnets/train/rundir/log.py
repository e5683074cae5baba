"""The run directory: resolved config, environment, metrics, TensorBoard, curves, results.

Only the main process (rank 0) creates a :class:`RunLog`; the other ranks log nothing. A
:class:`RunLog` holds the directory's lock (one run per directory) until :meth:`RunLog.close`;
its files are replaced atomically, and a failed write (a full disk) raises
:class:`resnets.io.atomic.StorageError` naming the directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from resnets.io.atomic import storage_error, write_atomically, write_json
from resnets.train.rundir.curves import plot_curves
from resnets.train.rundir.lock import RunDirLock

METRICS = "metrics.jsonl"  # one record per evaluation
LOSSES = "losses.jsonl"  # one record per logged step (train.log_every): step, training loss, learning rate


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """``<out_dir>/<name>-<YYYYmmdd-HHMMSS>`` (a suffix is added if it already exists)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(out_dir) / f"{name}-{stamp}"
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:  # mkdir is the atomic claim: two runs started together get two directories
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path, n = Path(f"{base}-{n}"), n + 1


def latest_run_dir(out_dir: str | Path, name: str) -> Path:
    """The newest ``<out_dir>/<name>-*`` holding a resumable checkpoint."""
    candidates = sorted(
        (p for p in Path(out_dir).glob(f"{name}-*") if (p / "last.state.pt").is_file()),
        key=lambda p: (p / "last.state.pt").stat().st_mtime,
    )
    if not candidates:
        raise FileNotFoundError(
            f"no run named {name!r} with a checkpoint under {out_dir}/ to resume; "
            "give the run directory (train.resume=runs/<name>-<time>) or start without resume"
        )
    return candidates[-1]


class RunLog:
    """Writes everything a run leaves behind in its directory."""

    def __init__(self, run_dir: Path, *, tensorboard: bool) -> None:
        self.dir = run_dir
        self._lock = RunDirLock(run_dir).acquire()
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(run_dir / "tb"))
            except Exception:  # tensorboard is optional: the JSON logs are the record
                self._tb = None

    def write_text(self, name: str, text: str) -> None:
        """Replace ``name`` atomically (a kill mid-write leaves the previous version)."""
        try:
            write_atomically(self.dir / name, text)
        except OSError as exc:
            raise storage_error(exc, what=name, directory=self.dir) from exc

    def write_json(self, name: str, obj: Any) -> None:
        try:
            write_json(self.dir / name, obj)
        except OSError as exc:
            raise storage_error(exc, what=name, directory=self.dir) from exc

    def truncate_metrics(self, after_step: int) -> None:
        """On resume: forget records past the checkpoint's step (they will be recomputed)."""
        for name in (METRICS, LOSSES):
            if (self.dir / name).is_file():
                keep = [r for r in self.read_metrics(name) if r["step"] <= after_step]
                self.write_text(name, "".join(json.dumps(r) + "\n" for r in keep))

    def _append(self, name: str, record: dict[str, Any]) -> None:
        try:
            with open(self.dir / name, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise storage_error(exc, what=name, directory=self.dir) from exc

    def metrics(self, record: dict[str, Any]) -> None:
        self._append(METRICS, record)
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._tb.add_scalar(key.replace("_", "/", 1), value, record["step"])

    def train_loss(self, *, step: int, loss: float, lr: float) -> None:
        """The training loss at a logged step (losses.jsonl, and TensorBoard's train/loss)."""
        self._append(LOSSES, {"step": step, "loss": loss, "lr": lr})
        if self._tb is not None:
            self._tb.add_scalar("train/loss", loss, step)

    def read_metrics(self, name: str = METRICS) -> list[dict[str, Any]]:
        """The records written so far; a line cut short by a killed process is left out."""
        path = self.dir / name
        records = []
        for line in path.read_text().splitlines() if path.is_file() else []:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "step" in record:
                records.append(record)
        return records

    def _title(self) -> str:
        """Model, data and run, from the run's config.yaml."""
        try:
            cfg = yaml.safe_load((self.dir / "config.yaml").read_text())
            return f"{cfg['model']['name']} on {cfg['data']['name']}: {self.dir.name}"
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
            return self.dir.name

    def close(self) -> None:
        try:
            if self._tb is not None:
                self._tb.close()
            plot_curves(self.read_metrics(), self.read_metrics(LOSSES), self.dir / "curves.png", title=self._title())
        except OSError:
            pass  # a full disk: the curves are a convenience, the error already raised is what matters
        finally:
            self._lock.release()
