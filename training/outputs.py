"""The model directory: model.onnx, model.json (MLM item), metrics.json, report.md, confusion_matrix.png."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lulc.checksum import multihash_sha256
from lulc.contract import ModelContract, to_mlm_item
from lulc.signals import held
from lulc.writable import check_writable, nearest_existing
from training.config import TrainingConfig
from training.errors import ConfigError
from training.imagery import Imagery
from training.report import plot_confusion, render_report, write_metrics

OUTPUT_FILES = ("model.onnx", "model.json", "metrics.json", "report.md", "confusion_matrix.png")
"""Files of a model directory."""


def mlm_datetime(imagery: Imagery, config: TrainingConfig) -> str:
    """The MLM item's datetime, stable across runs: the last acquisition, else the image file's mtime.

    An image that records no acquisition is dated by the end of the recipe's ``datetime`` (both ends are
    required); else by its mtime, which the imagery's notes say.
    """
    window = imagery.time_window
    if window:
        return window.split("/")[-1]
    stamp = datetime.fromtimestamp(Path(str(config.image)).stat().st_mtime, tz=UTC).replace(microsecond=0)
    return stamp.isoformat().replace("+00:00", "Z")


def check_model_out(out: Path, given: str | None = None) -> None:
    """Refuse an ``--out`` that training would destroy: only a new path, an empty folder or a model folder.

    The model directory replaces what is at ``out`` whole, so a folder holding anything else (the training
    data itself, say) or a file is refused before any work, as is the current folder (it cannot be moved).
    ``given``: the ``--out`` the messages name (a ``{version}`` path, checked as one version's folder).

    Raises:
        ConfigError: ``out`` is a file, the current folder, a mount point, a folder with files a model has
            not, or in a folder this process cannot write in (found after the training, before).
    """
    name = given or str(out)
    if not out.exists():
        above = nearest_existing(out)
        if above is not None and not above.is_dir():
            raise ConfigError(f"--out {name} is below the file {above}: give a folder's path")
        if above is not None:
            check_writable(above, f"--out {name}", ConfigError)
        return
    if not out.is_dir():
        raise ConfigError(f"--out {name} is a file; give a new folder (or an earlier model folder) instead")
    if out.resolve() == Path.cwd().resolve():
        raise ConfigError("--out cannot be the current folder: give a new folder, e.g. --out model")
    if _mount_point(out):
        raise ConfigError(
            f"--out {name} is a mount point, which cannot be replaced whole: give a folder inside it, "
            f"e.g. --out {Path(name) / 'model'}"
        )
    check_writable(out.absolute().parent, f"--out {name}", ConfigError)
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUT_FILES)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(
            f"--out {name} holds files that are not a model's ({shown}); training replaces the folder whole: "
            "give a new or empty folder, or an earlier model folder"
        )


def _mount_point(path: Path) -> bool:
    """Whether ``path`` is a mount point, a bind mount of a folder of the same file system included.

    ``os.path.ismount`` compares devices, so a bind mount (a container's volume, often) read as a folder.
    """
    if os.path.ismount(path):
        return True
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:  # not Linux
        return False
    fields = [line.split() for line in lines]
    points = {re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4]) for f in fields if len(f) > 4}
    return str(path.resolve()) in points


def install(tmp: Path, out: Path) -> None:
    """Move the finished temporary directory onto ``out`` (replacing an earlier model directory)."""
    check_model_out(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    with held():  # an interrupt between the two renames left no model at out (review)
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        try:
            os.replace(out, old / out.name)
        except BaseException:
            old.rmdir()  # not left beside the model it could not move
            raise
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old / out.name, out)  # the earlier model back
            old.rmdir()
            raise
        shutil.rmtree(old, ignore_errors=True)  # here: a signal put off until the block's end skipped it


def write_model_dir(
    out: Path,
    onnx_bytes: bytes,
    contract: ModelContract,
    metrics: dict[str, Any],
    imagery: Imagery,
    config: TrainingConfig,
) -> None:
    """Write every output into a temporary directory beside ``out``, then rename it onto ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / "model.onnx").write_bytes(onnx_bytes)
        write_metrics(tmp / "metrics.json", metrics)
        (tmp / "report.md").write_text(render_report(metrics, imagery.description))
        plot_confusion(
            tmp / "confusion_matrix.png", metrics["holdout"], f"{contract.name} ({metrics['model']['type']})"
        )
        extra = {
            "metrics": {
                "href": "metrics.json",
                "type": "application/json",
                "roles": ["metadata"],
                "title": "Accuracy metrics",
            },
            "report": {
                "href": "report.md",
                "type": "text/markdown",
                "roles": ["metadata"],
                "title": "Accuracy report",
            },
            "confusion_matrix": {"href": "confusion_matrix.png", "type": "image/png", "roles": ["overview"]},
        }
        item = to_mlm_item(
            contract,
            "model.onnx",
            multihash_sha256(onnx_bytes),
            mlm_datetime(imagery, config),
            extra,
            size=len(onnx_bytes),
        )
        (tmp / "model.json").write_text(json.dumps(item, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
