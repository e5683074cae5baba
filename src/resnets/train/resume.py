"""Resuming a run: which checkpoint (``train.resume``), and which changes a resume may make."""

from __future__ import annotations

from pathlib import Path

from resnets.io.checkpoint import Checkpoint, resolve_checkpoint
from resnets.train.config import TrainConfig
from resnets.train.configio import changed_keys, config_from_mapping, flatten, load_yaml, to_dict
from resnets.train.rundir.log import latest_run_dir


def resume_path(cfg: TrainConfig) -> Path | None:
    """The checkpoint to resume from: ``train.resume`` true (newest run of this name) or a path."""
    resume = cfg.train.resume
    if resume is False:
        return None
    if resume is True:
        return latest_run_dir(cfg.train.out_dir, cfg.run_name) / "last.safetensors"
    path = Path(resume)
    return resolve_checkpoint(path, prefer=("last",))


# Keys a resume may change: how long and how often, and how the step runs. Everything else
# (model, data, optimizer, schedule, seeds) would make the resumed run another run.
RESUME_SAFE: frozenset[str] = frozenset({
    "train.epochs", "train.iterations", "train.eval_every", "train.checkpoint_every", "train.log_every",
    "train.threads", "train.tensorboard", "train.compile", "train.channels_last", "train.cuda_graphs",
    "train.resume", "train.out_dir", "train.name", "data.workers", "data.decode_cache", "data.download",
    "data.root", "data.eval_batch_size",
    "data.batch_size",  # checked against the global batch by check_resume_batch
    "train.sync_bn",  # how BN statistics are gathered across processes; the weights are plain BN
})


def check_resume_config(cfg: TrainConfig, ckpt: Checkpoint, *, path: Path) -> None:
    """Refuse a resume whose configuration differs from the checkpoint's in a key outside
    :data:`RESUME_SAFE`, naming the key (before anything is loaded into the model or written)."""
    if "config" not in ckpt.metadata:
        return
    try:
        saved = config_from_mapping(load_yaml(ckpt.metadata["config"]))
    except ValueError:
        return  # written by another version: the weights check below still applies
    refused = [k for k in changed_keys(saved, cfg) if k not in RESUME_SAFE]
    if refused:
        flat = flatten(to_dict(saved))
        shown = ", ".join(f"{k} (was {flat[k]!r})" for k in refused[:3])
        raise ValueError(
            f"cannot resume {path} with another {shown}: it changes the model, the data or the optimizer; "
            "a resume may change only how long it runs, how often it evaluates, logs and saves, and data.workers. "
            "Drop the override, or start a new run from it with finetune.source=" + str(path.parent)
        )


__all__ = ["RESUME_SAFE", "check_resume_config", "resume_path"]
