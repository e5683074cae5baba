"""The run directory, in one room: its paths (new, newest, resumed), its lock (one run per
directory), its log (config, environment, metrics, curves, results), its checkpoints, and the
one atomic write every file of it goes through.

``<out_dir>/<name>-<YYYYmmdd-HHMMSS>/``: config.yaml, env.json, metrics.jsonl, losses.jsonl, tb/, curves.png,
final.json, best.safetensors, last.safetensors + last.state.pt, .lock
"""

from resnets.train.rundir.atomic import StorageError, write_atomically
from resnets.train.rundir.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint, save_checkpoint
from resnets.train.rundir.lock import RunDirBusyError, RunDirLock
from resnets.train.rundir.log import RunLog, latest_run_dir, new_run_dir

__all__ = [
    "Checkpoint", "RunDirBusyError", "RunDirLock", "RunLog", "StorageError", "latest_run_dir", "load_checkpoint",
    "new_run_dir", "resolve_checkpoint", "save_checkpoint", "write_atomically",
]
