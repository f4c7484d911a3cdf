"""Price sheets: the dated offers and prices of each provider, shipped as data and refreshable.

A sheet is JSON: `{"provider", "date" (YYYY-MM-DD), "source" (where the prices were read: a URL or an
API), "currency", "offers": [Offer JSON without "provider"...]}`. The shipped ones live in
`providers/prices/<provider>.json`; `mlops targets refresh` writes fresh ones to
`MLOPS_HOME/prices/<provider>.json`, which win over the shipped ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nocode.catalogue.home import mlops_home
from mlops_nocode.providers.base import Offer

SHIPPED = Path(__file__).parent / "prices"


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
    user = user_prices_dir() / f"{provider}.json"
    return user if user.is_file() else SHIPPED / f"{provider}.json"


def parse_sheet(data: Any, where: str) -> PriceSheet:
    try:
        provider = str(data["provider"])
        currency = str(data.get("currency", "USD"))
        offers = tuple(
            Offer.from_json({"currency": currency, **o, "provider": provider}) for o in data["offers"]
        )
        return PriceSheet(provider, str(data["date"]), str(data["source"]), currency, offers)
    except (KeyError, TypeError, ValueError) as e:
        raise PriceSheetError(f"{where}: malformed price sheet ({type(e).__name__}: {e})") from None


def load_sheet(provider: str) -> PriceSheet:
    path = sheet_path(provider)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PriceSheetError(f"{path}: cannot read price sheet: {e}") from None
    return parse_sheet(data, str(path))


def save_sheet(sheet: PriceSheet) -> Path:
    """Store a refreshed sheet under MLOPS_HOME/prices (atomically)."""
    folder = user_prices_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sheet.provider}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sheet.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
