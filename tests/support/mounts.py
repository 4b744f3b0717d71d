"""Real mounts for tests, in a private mount namespace (``unshare -m``): read-only folders even for root."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

PRIVATE_MOUNTS = shutil.which("unshare") is not None and (
    subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode == 0
)
"""Whether this process may make mounts of its own (root or CAP_SYS_ADMIN)."""
REASON = "needs `unshare -m` (root or CAP_SYS_ADMIN) for mounts"


def run_with_mounts(folder: Path, mounts: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run the shell ``mounts`` then Python ``code`` in ``folder``, in a mount namespace of their own."""
    script = f"{mounts} && {shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=folder, capture_output=True, text=True, check=False
    )


def errors_under_mounts(folder: Path, mounts: str, call: str, arguments: list[str]) -> list[str]:
    """``type: message`` of what ``call(Path(a))`` raises for each of ``arguments``, run under ``mounts``.

    ``call`` is ``module:function``; an argument that raises nothing gives no line.
    """
    module, function = call.split(":")
    code = (
        f"from pathlib import Path\nfrom {module} import {function}\n"
        f"for argument in {arguments!r}:\n"
        f"    try:\n        {function}(Path(argument))\n"
        "    except Exception as exc:\n        print(type(exc).__name__, exc)\n"
    )
    done = run_with_mounts(folder, mounts, code)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
