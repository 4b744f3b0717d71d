"""Stage a declared model recipe (infra/models/<name>.yaml) in a data root, with the data it names.

Model recipes use paths relative to the recipe file. The demo recipe names ``demo-world/...``: the offline
demo world, generated here with ``demo.world.generate`` (what ``lulc demo-data`` runs). Recipes
of real models name URLs (STAC API, s3://, https://), left as they are, or files next to the recipe (e.g.
``aoi: alps/aoi.geojson``), copied to the same place relative to the staged recipe so that they resolve
as they do in git. A relative path leaving the recipe's folder, a missing file and a relative ``stac:``
(a static catalog is a tree of files the recipe does not name) are refused. Prints the staged path; the
retrain workflow then runs ``lulc train --config <staged path>``.
"""

from __future__ import annotations

import argparse
import posixpath
import shutil
import sys
from pathlib import Path, PurePosixPath

import yaml

DEMO_WORLD = "demo-world"
"""Folder (relative to the staged recipe) that holds the demo world when a recipe refers to it."""

PATH_KEYS = ("stac", "aoi", "points", "classes", "image", "baseline")


def needs_demo_world(recipe: dict[str, object]) -> bool:
    """Whether any path in ``recipe`` points into the demo world folder."""
    return any(
        isinstance(recipe.get(key), str) and posixpath.normpath(str(recipe[key])).startswith(f"{DEMO_WORLD}/")
        for key in PATH_KEYS
    )


def sibling_files(config: Path, recipe: dict[str, object]) -> list[str]:
    """The recipe's relative paths outside the demo world (normalised), each an existing file beside it.

    Raises SystemExit for a path that leaves the recipe's folder, names no file, or is a relative
    ``stac:`` (a local static catalog: more files than the recipe names).
    """
    found: list[str] = []
    for key in PATH_KEYS:
        value = recipe.get(key)
        if not isinstance(value, str) or "://" in value or PurePosixPath(value).is_absolute():
            continue
        relative = posixpath.normpath(value)
        if relative.startswith(f"{DEMO_WORLD}/"):
            continue
        if relative == ".." or relative.startswith("../"):
            raise SystemExit(f"{config}: {key}: {value} leaves the recipe's folder; keep data beside it")
        if key == "stac":
            raise SystemExit(f"{config}: stac: {value} is a local catalog; give a STAC API or catalog URL")
        if not (config.parent / relative).is_file():
            raise SystemExit(f"{config}: {key}: {value} is not a file next to the recipe")
        found.append(relative)
    return found


def stage(config: Path, data_root: Path, *, demo_size: int | None = None, seed: int = 0) -> Path:
    """Copy ``config`` and the files it names into ``data_root``; generate the demo world if it needs it."""
    recipe = yaml.safe_load(config.read_text())
    if not isinstance(recipe, dict):
        raise SystemExit(f"{config}: a model recipe must be a YAML mapping")
    siblings = sibling_files(config, recipe)
    data_root.mkdir(parents=True, exist_ok=True)
    if needs_demo_world(recipe):
        from demo.world import DEFAULT_SIZE, generate

        generate(data_root / DEMO_WORLD, size=demo_size or DEFAULT_SIZE, seed=seed)
    for relative in siblings:
        target = data_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.parent / relative, target)
    staged = data_root / config.name
    shutil.copyfile(config, staged)
    return staged


def main(argv: list[str] | None = None) -> int:
    """Command line: ``stage_config.py RECIPE --data-root DIR [--demo-size N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("config", type=Path, help="the model recipe, e.g. infra/models/demo.yaml")
    parser.add_argument("--data-root", type=Path, required=True, help="folder to stage recipe and data in")
    parser.add_argument("--demo-size", type=int, default=None, help="demo world size in pixels")
    args = parser.parse_args(argv)
    print(stage(args.config, args.data_root, demo_size=args.demo_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
