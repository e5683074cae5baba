"""A pre-imported `resnets` process that forks one `resnets ...` command per request.

Importing torch costs seconds on a busy machine; the kill-and-resume test pays it once here,
then each request forks a child that runs ``resnets.cli.main(argv)`` exactly as
``python -m resnets`` would, and that the test kills with SIGKILL.

Protocol (one JSON object per line): stdin ``{"argv": [...], "log": path, "pause": null or
{"at": "replace"|"fsync", "count": k, "marker": path}}``; stdout ``{"pid": n}`` when the child
starts, then ``{"pid": n, "status": s}`` when it ends (s < 0: killed by signal -s).

``pause`` stops the child inside a checkpoint write (before its k-th ``os.replace`` or
``os.fsync`` of a ``last.*`` file) after writing ``marker``, so the test kills it exactly there.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _pause_hook(at: str, count: int, marker: str) -> None:
    seen = [0]

    def hit(what: str) -> None:
        seen[0] += 1
        if seen[0] == count:
            with open(marker, "w") as fh:
                fh.write(f"{at} #{count}: {what}\n")
            time.sleep(3600)

    if at == "replace":
        real_replace = os.replace

        def replace(src, dst, *args, **kw):  # noqa: ANN001, ANN002, ANN003 - os.replace's signature
            if os.path.basename(str(dst)).startswith("last."):
                hit(str(dst))
            return real_replace(src, dst, *args, **kw)

        os.replace = replace
    else:
        real_fsync = os.fsync

        def fsync(fd):  # noqa: ANN001
            try:
                name = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                name = ""
            if "/.last." in name:
                hit(name)
            return real_fsync(fd)

        os.fsync = fsync


def _child(request: dict) -> None:
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        if request.get("pause"):
            p = request["pause"]
            _pause_hook(p["at"], int(p["count"]), p["marker"])
        from resnets.cli import main

        code = main(request["argv"])
    except BaseException as exc:  # noqa: BLE001 - report anything and exit non-zero
        import traceback

        traceback.print_exc()
        code = 1 if not isinstance(exc, SystemExit) else int(exc.code or 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    import resnets.cli
    import resnets.train  # noqa: F401 - imported once, before forking

    resnets.cli.build_parser()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"pid": pid, "status": code}), flush=True)


if __name__ == "__main__":
    main()
