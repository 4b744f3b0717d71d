"""Stage a declared model recipe (infra/models/<name>.yaml) in a data root, with the data it names.

Model recipes use paths relative to the recipe file. The demo recipe names ``demo-world/...``: the offline
demo world, generated here with ``demo.world.generate`` (what ``lulc demo-data`` runs). Recipes
of real models name URLs (STAC API, s3://, https://) and are copied as they are. Prints the staged path;
the retrain workflow then runs ``lulc train --config <staged path>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

DEMO_WORLD = "demo-world"
"""Folder (relative to the staged recipe) that holds the demo world when a recipe refers to it."""

PATH_KEYS = ("stac", "aoi", "points", "classes", "image", "baseline")


def needs_demo_world(recipe: dict[str, object]) -> bool:
    """Whether any path in ``recipe`` points into the demo world folder."""
    return any(
        isinstance(recipe.get(key), str) and str(recipe[key]).startswith(f"{DEMO_WORLD}/")
        for key in PATH_KEYS
    )


def stage(config: Path, data_root: Path, *, demo_size: int | None = None, seed: int = 0) -> Path:
    """Copy ``config`` into ``data_root`` and generate the demo world there if it refers to it."""
    recipe = yaml.safe_load(config.read_text())
    if not isinstance(recipe, dict):
        raise SystemExit(f"{config}: a model recipe must be a YAML mapping")
    data_root.mkdir(parents=True, exist_ok=True)
    if needs_demo_world(recipe):
        from demo.world import DEFAULT_SIZE, generate

        generate(data_root / DEMO_WORLD, size=demo_size or DEFAULT_SIZE, seed=seed)
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
