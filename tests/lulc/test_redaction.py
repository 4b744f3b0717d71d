"""The server's own paths cut from the apps' answers (``lulc.redaction``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lulc.redaction import hide, relative_folders


def test_relative_folders_map_their_resolved_form_to_the_folder_as_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    texts = relative_folders(["runs/", "data", "/srv/runs", "http://127.0.0.1:9000/x/", "~/maps"])
    assert texts == {str(tmp_path / "runs"): "runs", str(tmp_path / "data"): "data"}
    monkeypatch.chdir("/")
    assert relative_folders(["."]) == {}, "the root is no folder to name: every path would be rewritten"
    monkeypatch.chdir(tmp_path)
    assert relative_folders(["./runs", "runs"]) == {str(tmp_path / "runs"): "./runs"}, "the first one set"


def test_hide_replaces_a_folder_only_where_its_name_ends() -> None:
    texts = {"/srv/lulc/runs": "runs", "/srv/lulc": "."}
    assert hide("item /srv/lulc/runs/a/item.json is missing", texts) == "item runs/a/item.json is missing"
    assert hide("no file at '/srv/lulc/runs'", texts) == "no file at 'runs'"
    assert hide("/srv/lulc/runs2/x and /srv/lulcx", texts) == "./runs2/x and /srv/lulcx"
    assert hide(r"under /srv/lulc", {"/srv/lulc": r"C:\1"}) == r"under C:\1", "no regex escapes in values"
    # HTTP review: the client's own relative text was rewritten where it ended as the resolved path does
    assert hide("no file at /srv/lulc/runs.", texts) == "no file at runs.", "a sentence's full stop"
    assert hide("no file at /srv/lulc/runs.tif", texts) == "no file at ./runs.tif"
    assert hide("read file:///srv/lulc/runs/a.tif", texts) == "read runs/a.tif"
    given = "url 'runs/../../../etc/passwd' is not allowed"
    assert hide(given, {"/etc/passwd": "runs/../../../etc/passwd"}) == given
