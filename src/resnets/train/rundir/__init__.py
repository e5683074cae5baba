"""The run directory, in one room: its paths (new, newest, resumed), its lock (one run per
directory), its log (config, environment, metrics, curves, results). Its checkpoints and the
atomic write every file of it goes through are :mod:`resnets.io.checkpoint` and
:mod:`resnets.io.atomic`.

``<out_dir>/<name>-<YYYYmmdd-HHMMSS>/``: config.yaml, env.json, metrics.jsonl, losses.jsonl, tb/, curves.png,
final.json, best.safetensors, last.safetensors + last.state.pt, .lock
"""

from resnets.train.rundir.lock import RunDirBusyError, RunDirLock
from resnets.train.rundir.log import RunLog, latest_run_dir, new_run_dir

__all__ = ["RunDirBusyError", "RunDirLock", "RunLog", "latest_run_dir", "new_run_dir"]
