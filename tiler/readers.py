"""rio-tiler readers bound to the allow-list: a STAC item's assets are read only from permitted prefixes."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import pystac
import rasterio
from rio_tiler.io import Reader, STACReader
from rio_tiler.types import AssetInfo, AssetType

from lulc.gdal_env import REMOTE_RASTER_DRIVER, ingested_bytes_at_open
from tiler.allowlist import AllowList
from tiler.errors import NotARasterError, NotFoundError, UpstreamError

try:  # rio-tiler fetches items with httpx2 (newer) or httpx (older)
    import httpx2 as _http
except ImportError:  # pragma: no cover - depends on the rio-tiler version
    import httpx as _http  # type: ignore[no-redef]


class GTiffReader(Reader):
    """rio-tiler's ``Reader`` opening its dataset with the GTiff driver only (``REMOTE_RASTER_DRIVER``).

    GDAL would otherwise take a VRT served under a ``.tif`` name for what its content says, and read any
    local file or URL that VRT names: outside the allow-list the path passed.
    """

    def __attrs_post_init__(self) -> None:
        if not self.dataset:
            self.dataset = self._ctx_stack.enter_context(
                rasterio.open(self.input, driver=REMOTE_RASTER_DRIVER)
            )
        super().__attrs_post_init__()


class AllowedSTACReader(STACReader):
    """``STACReader`` that refuses asset hrefs outside the allow-list and reports bad items clearly."""

    allow: ClassVar[AllowList]

    def __attrs_post_init__(self) -> None:
        self.reader = GTiffReader  # every asset opened as GTiff, like a /cog/ URL
        try:
            super().__attrs_post_init__()
        except FileNotFoundError as exc:
            raise NotFoundError(f"STAC item {self.input} does not exist") from exc
        except _http.HTTPStatusError as exc:
            status = exc.response.status_code
            if status == 404:
                raise NotFoundError(f"STAC item {self.input} does not exist (HTTP 404)") from exc
            raise UpstreamError(f"fetching STAC item {self.input} failed: HTTP {status}") from exc
        except _http.HTTPError as exc:
            raise UpstreamError(f"fetching STAC item {self.input} failed: {exc}") from exc
        except (ValueError, KeyError, TypeError, AttributeError, pystac.STACError, OSError) as exc:
            raise NotARasterError(f"{self.input} is not a STAC item: {exc}") from exc

    def _get_asset_info(self, asset: AssetType) -> AssetInfo:
        with warnings.catch_warnings():
            # rio-tiler warns for every raster:bands entry without statistics, i.e. on every tile
            warnings.filterwarnings("ignore", message="Some statistics data in STAC are invalid")
            info = super()._get_asset_info(asset)
        # Checked, normalised and with its redirects resolved: GDAL opens exactly this.
        info["url"] = self.allow.gdal_path(info["url"], f"asset {asset!r}")
        # GDAL options from the item: only the header size rio-tiler passes, capped (review: 1.5e9 made
        # every open read 10 MiB)
        size = ingested_bytes_at_open((info.get("env") or {}).get("GDAL_INGESTED_BYTES_AT_OPEN"))
        if size is None:
            info.pop("env", None)
        else:
            info["env"] = {"GDAL_INGESTED_BYTES_AT_OPEN": size}
        return info


def allowed_stac_reader(allow: AllowList) -> type[AllowedSTACReader]:
    """A STAC reader class whose asset hrefs must pass ``allow``."""
    attributes: dict[str, Any] = {"allow": allow, "__doc__": AllowedSTACReader.__doc__}
    return type("LulcSTACReader", (AllowedSTACReader,), attributes)
