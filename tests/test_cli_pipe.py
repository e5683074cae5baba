"""A reader that goes away (`resnets models | head -1`) ends the command quietly."""

import subprocess
import sys


def test_closed_pipe_ends_quietly() -> None:
    # the reader closes the pipe before the command writes its first line (imports take longer than
    # this), so that the first write fails: no traceback, no error line, the exit status of SIGPIPE
    proc = subprocess.Popen([sys.executable, "-m", "resnets", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert "Traceback" not in text and "error" not in text, text
    assert proc.returncode == 141
