"""Seasons against one composite on the demo world: the same points, the same SVM, Cropland and Grassland F1.

    python -m demo.seasons OUT [--size 1024] [--seed 0]

generates the seasonal demo world, trains the single-composite recipe (``training.yaml``) and the seasonal
one (``training-seasons.yaml``), classifies the AOI with each (the single composite over its window, the
seasons over ``SEASONAL_YEAR``) and scores both maps on the independent validation points (Olofsson et al.
2014 accuracies per class, F1 from them). README's side-by-side table comes from this.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from demo.landscape import CLASS_TABLE
from demo.sensor import SEASONAL_YEAR
from demo.world import DEFAULT_SIZE, generate


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _f1(row: dict[str, Any]) -> float | None:
    if row["users_accuracy"] is None or row["producers_accuracy"] is None:  # the class is not on the map
        return None
    user, producer = float(row["users_accuracy"]), float(row["producers_accuracy"])
    return 0.0 if user + producer == 0 else 2 * user * producer / (user + producer)


def compare_seasons(out: Path, size: int = DEFAULT_SIZE, seed: int = 0, model: str = "svm") -> dict[str, Any]:
    """Train and map both recipes on the seasonal demo world; their overall accuracy and F1 per class."""
    from service.api import classify
    from training.api import assess, train

    world = generate(out / "world", size=size, seed=seed, seasons=True)
    seasonal = world.training_config.with_name("training-seasons.yaml")
    aoi = json.loads(world.aoi.read_text())
    runs = {
        "single composite": (world.training_config, world.datetime_window),
        "seasons": (seasonal, str(SEASONAL_YEAR)),
    }
    result: dict[str, Any] = {"size": size, "seed": seed, "model": model}
    for name, (recipe, window) in runs.items():
        slug = name.replace(" ", "-")
        trained = train(recipe, models=[model], out=out / "models" / slug)
        mapped = classify(
            trained.model_dir, stac=str(world.catalog), aoi=aoi, datetime=window, out=out / "runs" / slug
        )
        scored = assess(mapped.classes, world.validation_points, "label", world.classes).result
        result[name] = {
            "holdout_accuracy": trained.metrics["holdout"]["overall_accuracy"],
            "map_accuracy": scored["overall_accuracy"],
            "f1": {row["name"]: _rounded(_f1(row)) for row in scored["classes"]},
            "items": [
                source["href"].rsplit("/", 1)[-1]
                for source in mapped.item.get("links", [])
                if source.get("rel") == "derived_from"
            ],
        }
    return result


def main(argv: list[str] | None = None) -> int:
    """Print the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = compare_seasons(args.out, args.size, args.seed)
    print(json.dumps(result, indent=2))
    names = [c.name for c in CLASS_TABLE.classes]
    print("class".ljust(12), "single composite F1".rjust(20), "seasons F1".rjust(12))
    for name in names:
        print(
            name.ljust(12),
            f"{result['single composite']['f1'][name]:>20.3f}",
            f"{result['seasons']['f1'][name]:>12.3f}",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
