"""The tutorial notebook runs end to end on the tutorial data through the Python API, showing what it says."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "tutorial.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
    return "\n".join(parts)


def _has_png(cell: nbformat.NotebookNode) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.fixture(scope="module")
def executed(lulc_py: Path, tmp_path_factory: pytest.TempPathFactory) -> list[nbformat.NotebookNode]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    out = tmp_path_factory.mktemp("notebook")
    setup = nbformat.v4.new_code_cell(
        "import os\n"
        f"os.environ['LULC_PY'] = {str(lulc_py)!r}\n"
        f"os.environ['LULC_EXAMPLE_OUT'] = {str(out)!r}\n"
    )
    notebook.cells.insert(0, setup)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out)}}
    ).execute()
    return [c for c in notebook.cells[1:] if c.cell_type == "code"]


def test_the_leaderboard_compares_the_three_tutorial_models(executed: list[nbformat.NotebookNode]) -> None:
    board = next(_text(c) for c in executed if "run.leaderboard" in c.source)
    for model in ("svm", "rf", "dt"):
        assert re.search(rf"^{model}\s+0\.\d+", board, re.MULTILINE), board


def test_the_confusion_matrix_names_the_classes_and_is_drawn(executed: list[nbformat.NotebookNode]) -> None:
    matrix = next(_text(c) for c in executed if c.source.strip() == "run.confusion_matrix")
    for name in ("Water", "Dense Veg", "Veg", "Impervious"):
        assert name in matrix
    assert _has_png(next(c for c in executed if c.source.startswith("run.figure")))


def test_the_map_agrees_with_the_published_one_and_marks_nodata(
    executed: list[nbformat.NotebookNode],
) -> None:
    compared = next(_text(c) for c in executed if "published" in c.source)
    nodata = int(re.search(r"nodata pixels: (\d+)", compared).group(1))  # type: ignore[union-attr]
    agreement = float(re.search(r"published SVM map: ([\d.]+)%", compared).group(1))  # type: ignore[union-attr]
    assert nodata == 4458  # the slivers outside the scene, measured in the data's README
    assert agreement > 90.0
    assert _has_png(next(c for c in executed if "result.figure" in c.source))


def test_bad_input_shows_the_cli_error(executed: list[nbformat.NotebookNode]) -> None:
    shown = next(_text(c) for c in executed if "no-such.shp" in c.source)
    assert re.fullmatch(r"PointsError: points file \S*no-such\.shp does not exist", shown.strip()), shown
