"""The legend of a map: its classes as JSON, or drawn as a PNG (swatch + name per class)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, Field

from tiler.colormaps import MapClasses


class LegendEntry(BaseModel):
    """One class of the legend."""

    value: int = Field(description="Pixel value of the class in the map.")
    name: str = Field(description="Class name.")
    color: str = Field(description='Display colour "#rrggbb" (the colour of its tiles).')
    description: str = Field(default="", description="Longer description, if any.")


class Legend(BaseModel):
    """The classes of a map, in table order, and where they were read from."""

    url: str = Field(description="The map the legend belongs to.")
    source: str = Field(description='"stac" (classification:classes of its item) or "colortable".')
    origin: str = Field(description="The file or URL the classes were read from.")
    nodata: int = Field(description="Pixel value of nodata (rendered transparent).")
    classes: list[LegendEntry]


def legend_of(url: str, found: MapClasses, nodata: int) -> Legend:
    """The legend model of a map's class table."""
    return Legend(
        url=url,
        source=found.source,
        origin=found.origin,
        nodata=nodata,
        classes=[
            LegendEntry(value=c.value, name=c.name, color=c.color, description=c.description)
            for c in found.table.classes
        ],
    )


SWATCH = 18
"""Side of a colour swatch in pixels."""
ROW = 24
PAD = 8


PNG_NAME_CHARS = 60
"""Longest class name the PNG legend draws (longer ones end in ...): with at most 255 classes, the picture
stays under about 600 x 5,600 px whatever an item's titles hold (a 20,000-character title took 5 GiB)."""


def _clipped(name: str) -> str:
    return name if len(name) <= PNG_NAME_CHARS else name[: PNG_NAME_CHARS - 3] + "..."


def legend_png(legend: Legend) -> bytes:
    """A PNG picture of the legend: one row per class, a filled swatch of its colour and its name."""
    font = ImageFont.load_default(size=14)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    names = [_clipped(c.name) for c in legend.classes]
    text_width = max(int(probe.textlength(name, font=font)) for name in names)
    width = PAD + SWATCH + PAD + text_width + PAD
    height = PAD + ROW * len(legend.classes) + PAD - (ROW - SWATCH)
    image = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i, (entry, name) in enumerate(zip(legend.classes, names, strict=True)):
        top = PAD + i * ROW
        draw.rectangle([PAD, top, PAD + SWATCH - 1, top + SWATCH - 1], fill=entry.color, outline=None)
        draw.text((PAD + SWATCH + PAD, top + SWATCH // 2), name, fill=(0, 0, 0, 255), font=font, anchor="lm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
