"""``lulc classify``'s summary names every file the run wrote, not only the map and its confidence."""

from __future__ import annotations

from pathlib import Path

from tests.service.products_support import train_model, truth_map, write_image
from tests.support.cli import lulc


def test_the_summary_lists_every_file_of_the_run(tmp_path: Path) -> None:
    model = train_model(tmp_path)
    image = write_image(tmp_path / "image.tif", truth_map((200, 200), 20, seed=1), 0.06, seed=1)
    out = tmp_path / "run"
    done = lulc(
        "classify", "--model", str(model), "--image", str(image), "--datetime", "2024-06-01",
        "--probabilities", "--mmu-ha", "0.1", "--out", str(out)
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    on_disk = {p.name + ("/" if p.is_dir() else "") for p in out.iterdir()}
    assert {"probabilities.tif", "classes.qml", "classes.tif.aux.xml", "clean/"} <= on_disk
    first = done.stdout.splitlines()[0]
    unnamed = sorted(name for name in on_disk if name.rstrip("/") not in first)
    assert unnamed == [], first
    prefix = f"wrote {out}/ ("
    assert first.startswith(prefix), first
    assert first.endswith(")"), first
    assert sorted(first.removeprefix(prefix).removesuffix(")").split(", ")) == sorted(on_disk)
