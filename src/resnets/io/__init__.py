"""Files and the machine, low in the house: atomic writes, verified downloads, the environment
record, checkpoints and trained runs.

* :mod:`resnets.io.atomic`: ``write_atomically``, ``write_files_atomically``, ``write_json``,
  ``StorageError``;
* :mod:`resnets.io.download`: ``download`` (checksum, stall timeout, cut transfer, folder lock,
  progress, nothing partial left), ``download_file``, ``Checksum``, ``DownloadError``,
  ``ChecksumError``, ``file_checksum``, ``verify_file``;
* :mod:`resnets.io.environment`: ``environment`` (date, command, device, CPU, load, versions),
  ``cpu_model``, ``device_name``, ``load_average``, ``installed_versions``;
* :mod:`resnets.io.checkpoint`: the checkpoint files (``save_checkpoint``, ``load_checkpoint``,
  ``resolve_checkpoint``, ``read_metadata``, ``apply_weights``, ``Checkpoint``, ``json_meta``);
* :mod:`resnets.io.runs`: a trained run read back (``open_run``, ``TrainedRun``,
  ``model_from_metadata``).

The first three import nothing of resnets but :mod:`resnets.cpu_features` (every package may use
them; ``models`` imports them inside its functions, as importing this package imports
:mod:`resnets.models`); checkpoints and runs build networks through :mod:`resnets.models`.
Nothing here imports ``train``, ``deploy``, ``bench``, ``studies`` or the command line.
"""

from resnets.io.atomic import StorageError, write_atomically, write_files_atomically, write_json
from resnets.io.checkpoint import (
    Checkpoint,
    apply_weights,
    json_meta,
    load_checkpoint,
    read_metadata,
    resolve_checkpoint,
    save_checkpoint,
)
from resnets.io.download import (
    Checksum,
    ChecksumError,
    DownloadError,
    download,
    download_file,
    file_checksum,
    verify_file,
)
from resnets.io.environment import environment
from resnets.io.runs import TrainedRun, model_from_metadata, open_run

__all__ = [
    "Checkpoint", "Checksum", "ChecksumError", "DownloadError", "StorageError", "TrainedRun", "apply_weights",
    "download", "download_file", "environment", "file_checksum", "json_meta", "load_checkpoint",
    "model_from_metadata", "open_run", "read_metadata", "resolve_checkpoint", "save_checkpoint", "verify_file",
    "write_atomically", "write_files_atomically", "write_json",
]
