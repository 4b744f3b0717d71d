"""The class table (value, name, colour, description) shared by every command, and its YAML form."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lulc.errors import InputError, validation_problems
from lulc.local_files import read_yaml

NODATA = 255
"""The class value written where no valid input exists; never a real class."""

# A fixed qualitative palette (ColorBrewer "Paired" reordered, then "Set1"/"Dark2" extras) for
# class tables made from labels alone, so the same labels always get the same colours.
PALETTE: tuple[str, ...] = (
    "#1f78b4",
    "#33a02c",
    "#b2df8a",
    "#e31a1c",
    "#ff7f00",
    "#6a3d9a",
    "#fdbf6f",
    "#a6cee3",
    "#fb9a99",
    "#cab2d6",
    "#b15928",
    "#ffff99",
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
)

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class LandCoverClass(BaseModel):
    """One class of a land-cover map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: int = Field(ge=0, le=254, description="Pixel value in the map (255 is nodata).")
    name: str = Field(min_length=1, description="Human-readable name, unique in the table.")
    color: str = Field(description='Display colour as "#rrggbb".')
    description: str = ""

    @field_validator("color")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not _HEX.match(value):
            raise ValueError(f'colour {value!r} is not of the form "#rrggbb"')
        return value.lower()

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        """The colour as an (r, g, b, 255) tuple."""
        return (int(self.color[1:3], 16), int(self.color[3:5], 16), int(self.color[5:7], 16), 255)


class ClassTable(BaseModel):
    """An ordered table of classes with unique values and names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classes: list[LandCoverClass] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ClassTable:
        values = [c.value for c in self.classes]
        names = [c.name for c in self.classes]
        if len(set(values)) != len(values):
            raise ValueError(f"class values are not unique: {values}")
        if len(set(names)) != len(names):
            raise ValueError(f"class names are not unique: {names}")
        return self

    @property
    def values(self) -> list[int]:
        """Class values in table order."""
        return [c.value for c in self.classes]

    @property
    def names(self) -> list[str]:
        """Class names in table order."""
        return [c.name for c in self.classes]

    def by_value(self, value: int) -> LandCoverClass:
        """The class with this value."""
        for c in self.classes:
            if c.value == value:
                return c
        raise KeyError(value)

    def by_name(self, name: str) -> LandCoverClass:
        """The class with this name."""
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(name)

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """A GDAL / rio-tiler colour map: class values to RGBA, nodata fully transparent."""
        cmap = {c.value: c.rgba for c in self.classes}
        cmap[NODATA] = (0, 0, 0, 0)
        return cmap

    def category_names(self) -> list[str]:
        """GDAL category names indexed by pixel value (0..max value); unused values are empty."""
        names = [""] * (max(self.values) + 1)
        for c in self.classes:
            names[c.value] = c.name
        return names

    def machine_names(self) -> list[str]:
        """Machine names of the classes in table order: ``slug(name)``, made unique with ``-<value>``.

        These are classification v2's ``name`` (``^[0-9A-Za-z-_]+$``); the human name is its ``title``.
        """
        slugs = [slug(c.name) or f"class-{c.value}" for c in self.classes]
        repeated = {s for s in slugs if slugs.count(s) > 1}
        names = [f"{s}-{c.value}" if s in repeated else s for s, c in zip(slugs, self.classes, strict=True)]
        while len(set(names)) < len(names):  # a suffixed name met another class's own: ``a-b-1``, value 3
            pairs = zip(names, self.classes, strict=True)
            names = [f"{n}-{c.value}" if names.count(n) > 1 else n for n, c in pairs]
        return names

    def to_stac(self) -> list[dict[str, Any]]:
        """The table as STAC classification v2 ``classification:classes`` objects.

        ``name`` is the machine name (``machine_names``), ``title`` the human name, ``description`` the
        description (else the human name), ``color_hint`` the colour as ``RRGGBB``.
        """
        return [
            {
                "value": c.value,
                "name": machine,
                "title": c.name,
                "description": c.description or c.name,
                "color_hint": c.color[1:].upper(),
            }
            for c, machine in zip(self.classes, self.machine_names(), strict=True)
        ]

    @classmethod
    def from_stac(cls, classes: Sequence[dict[str, Any]]) -> ClassTable:
        """Read ``classification:classes`` objects (colours from ``color_hint``, else the palette).

        The human name is the v2 ``title`` when there is one, else ``name`` (classification v1 items, which
        put the human name there), else the value.
        """
        if not isinstance(classes, list | tuple) or not all(
            isinstance(c, dict) and "value" in c for c in classes
        ):
            raise InputError(
                "invalid classification:classes: a list of objects, each with a value, is needed"
            )
        rows = []
        for i, c in enumerate(classes):
            hint = c.get("color_hint")
            rows.append(
                {
                    "value": c["value"],
                    "name": c.get("title") or c.get("name") or str(c["value"]),
                    "color": f"#{hint}" if hint else PALETTE[i % len(PALETTE)],
                    "description": c.get("description", ""),
                }
            )
        return parse_class_table({"classes": rows}, "classification:classes")

    @classmethod
    def from_labels(cls, labels: Iterable[object]) -> ClassTable:
        """A table made from labels alone.

        Numeric labels keep their value; text labels are numbered 1..N in sorted order, one class per name
        whatever its case and surrounding spaces (as labels are matched to names). Names are the labels
        themselves and colours come from the fixed palette.

        Raises:
            InputError: the labels mix class codes and names (numbering them all would renumber the codes),
                or a code is not a whole number from 0 to 254.
        """
        unique = sorted(set(labels), key=lambda v: (isinstance(v, str), str(v)))
        rows = []
        integral = [v for v in unique if _is_integral(v)]
        fractions = [v for v in unique if _is_number(v) and not _is_integral(v)]
        outside = sorted({int(float(str(v))) for v in integral} - set(range(0, NODATA)))
        if (fractions and len(fractions) + len(integral) == len(unique)) or outside:
            shown = [str(v) for v in fractions[:5]] + [str(v) for v in outside[:5]]
            raise InputError(
                f"label(s) {', '.join(shown)} are no class codes: codes are whole numbers 0 to {NODATA - 1} "
                f"({NODATA} marks nodata): recode them, or label with class names"
            )
        if len(integral) == len(unique):
            for i, v in enumerate(sorted({int(float(str(v))) for v in unique})):
                rows.append({"value": v, "name": str(v), "color": PALETTE[i % len(PALETTE)]})
        elif integral:
            names = sorted({str(v).strip() for v in unique if not _is_integral(v)})
            codes = sorted({int(float(str(v))) for v in integral})
            raise InputError(
                f"the labels mix class codes ({codes[:10]}) and names ({names[:10]}): give a class table "
                "that names every code, or label with one kind"
            )
        else:
            folded: dict[str, str] = {}
            for text in sorted(str(v).strip() for v in unique):
                folded.setdefault(text.casefold(), text)
            for i, name in enumerate(sorted(folded.values())):
                rows.append({"value": i + 1, "name": name, "color": PALETTE[i % len(PALETTE)]})
        return parse_class_table({"classes": rows}, "labels")

    def to_yaml(self) -> str:
        """The YAML text of the class-table file format."""
        data = {"classes": [c.model_dump() for c in self.classes]}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def slug(text: str) -> str:
    """``text`` as a lower-case ASCII slug: letters and digits kept, every other run becomes one ``-``.

    ``"Bare soil"`` -> ``"bare-soil"``; ``"Wasser/Flüsse"`` -> ``"wasser-flusse"``; empty when nothing
    ASCII remains.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^0-9a-z]+", "-", ascii_text.lower()).strip("-")


def _is_number(value: object) -> bool:
    try:
        return math.isfinite(float(str(value)))
    except ValueError:
        return False


def _is_integral(value: object) -> bool:
    try:
        number = float(str(value))
    except ValueError:
        return False
    return number.is_integer()


def parse_class_table(data: object, origin: str) -> ClassTable:
    """Validate a class table from parsed YAML/JSON, naming ``origin`` in any error."""
    try:
        return ClassTable.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"invalid class table in {origin}: {validation_problems(exc)}") from exc


def table_from_band_tags(
    tags: dict[str, str], colours: dict[int, tuple[int, ...]], origin: str
) -> ClassTable | None:
    """The class table of a map's band metadata (``CLASS_<value>=<name>``) and colour table, or None.

    Every map lulc-stac writes names its classes so; a map naming none gives None.
    """
    named = sorted((int(k[6:]), v) for k, v in tags.items() if k.startswith("CLASS_") and k[6:].isdigit())
    if not named:
        return None
    rows = []
    for i, (value, name) in enumerate(named):
        rgba = colours.get(value)
        colour = "#{:02x}{:02x}{:02x}".format(*rgba[:3]) if rgba else PALETTE[i % len(PALETTE)]
        rows.append({"value": value, "name": name, "color": colour})
    return parse_class_table({"classes": rows}, f"{origin} band tags")


def raster_class_table(dataset: Any, origin: str) -> ClassTable | None:
    """``table_from_band_tags`` of band 1 of an open rasterio dataset (its tags, its colour table if any)."""
    try:
        colours = dataset.colormap(1)
    except ValueError:  # no colour table
        colours = {}
    return table_from_band_tags(dataset.tags(1), colours, origin)


def load_class_table(path: str | Path) -> ClassTable:
    """Read a class-table YAML file: ``classes: [{value, name, color, description}, ...]``."""
    path = Path(path)
    return parse_class_table(read_yaml(path, "class table"), str(path))
