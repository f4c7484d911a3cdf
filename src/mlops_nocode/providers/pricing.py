"""Price sheets: the dated offers and prices of each provider, shipped as data and refreshable.

A sheet is JSON: `{"provider", "date" (YYYY-MM-DD), "source" (where the prices were read: a URL or an
API), "currency", "offers": [Offer JSON without "provider"...]}`. The shipped ones live in
`providers/prices/<provider>.json`; `mlops targets refresh` writes fresh ones to
`MLOPS_HOME/prices/<provider>.json`, which win over the shipped ones.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nocode.catalogue.home import mlops_home
from mlops_nocode.providers.base import Offer

SHIPPED = Path(__file__).parent / "prices"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class PriceSheetError(ValueError):
    """A price sheet that cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class PriceSheet:
    provider: str
    date: str
    source: str
    currency: str
    offers: tuple[Offer, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "date": self.date,
            "source": self.source,
            "currency": self.currency,
            "offers": [{k: v for k, v in o.to_json().items() if k != "provider"} for o in self.offers],
        }


def user_prices_dir() -> Path:
    return mlops_home() / "prices"


def sheet_path(provider: str) -> Path:
    """The sheet in use: a refreshed one under MLOPS_HOME if present, else the shipped one."""
    if not _NAME.match(provider):
        raise PriceSheetError(f"{provider[:40]!r}: not a provider name (lower-case letters, digits, '-')")
    user = user_prices_dir() / f"{provider}.json"
    return user if user.is_file() else SHIPPED / f"{provider}.json"


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_offer(o: Offer, i: int) -> None:
    numbers = {"vcpus": o.vcpus, "memory_gib": o.memory_gib, "price_per_hour": o.price_per_hour}
    numbers["gpu_memory_gib"] = o.gpu_memory_gib
    for name, value in numbers.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"offers[{i}].{name} is {value}: give a finite number >= 0")
    if o.vcpus <= 0 or not o.id.strip() or o.gpu_count < 0 or (o.gpu_count > 0) != bool(o.gpu_type):
        raise ValueError(f"offers[{i}] ({o.id!r}): needs an id, vcpus > 0, and a gpu_type iff gpu_count > 0")


def parse_sheet(data: Any, where: str) -> PriceSheet:
    """A sheet from its JSON form; PriceSheetError names `where` and what is wrong."""
    try:
        provider = str(data["provider"])
        currency = str(data.get("currency", "USD"))
        if not isinstance(data["offers"], list):
            raise TypeError("offers must be a list")
        offers = tuple(
            Offer.from_json({"currency": currency, **o, "provider": provider}) for o in data["offers"]
        )
        for i, o in enumerate(offers):
            _check_offer(o, i)
        if not _DATE.match(str(data["date"])) or not str(data["source"]).strip():
            raise ValueError("date must be YYYY-MM-DD and source must say where the prices come from")
        return PriceSheet(provider, str(data["date"]), str(data["source"]), currency, offers)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PriceSheetError(f"{where}: malformed price sheet ({type(e).__name__}: {e})") from None


def load_sheet(provider: str) -> PriceSheet:
    path = sheet_path(provider)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PriceSheetError(f"{path}: cannot read price sheet: {e}") from None
    sheet = parse_sheet(data, str(path))
    if sheet.provider != provider:
        raise PriceSheetError(f"{path}: malformed price sheet (for {sheet.provider!r}, not {provider!r})")
    return sheet


def save_sheet(sheet: PriceSheet) -> Path:
    """Store a refreshed sheet under MLOPS_HOME/prices (atomically)."""
    sheet_path(sheet.provider)  # refuses a name that is not a provider's
    folder = user_prices_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sheet.provider}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sheet.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
