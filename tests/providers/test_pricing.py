"""Price sheets: every shipped one reads; refreshed ones (MLOPS_HOME/prices) win; malformed ones are
refused with the file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.providers import pricing
from tests.fixtures.providers import PRICES


def sheet(**changes: Any) -> dict[str, Any]:
    data = json.loads((PRICES / "runpod.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


@pytest.mark.parametrize("path", sorted(pricing.SHIPPED.glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_sheet_reads_and_names_its_source(path: Path) -> None:
    s = pricing.load_sheet(path.stem)
    assert s.provider == path.stem and s.source.strip() and len(s.date) == 10
    assert all(o.provider == path.stem and o.price_per_hour >= 0 for o in s.offers)


@pytest.mark.parametrize("path", sorted(PRICES.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_sheets_are_in_the_shipped_format(path: Path) -> None:
    s = pricing.parse_sheet(json.loads(path.read_text(encoding="utf-8")), str(path))
    assert s.offers and s.to_json()["provider"] == path.stem
    again = pricing.parse_sheet(s.to_json(), "round trip")
    assert again == s


def test_a_refreshed_sheet_wins_and_is_written_atomically(home: Path) -> None:
    shipped = pricing.load_sheet("local")
    fresh = pricing.PriceSheet("local", "2030-01-02", "test", "USD", ())
    path = pricing.save_sheet(fresh)
    assert path == home / "prices" / "local.json" and pricing.sheet_path("local") == path
    assert pricing.load_sheet("local") == fresh != shipped
    assert [p.name for p in path.parent.iterdir()] == ["local.json"]  # no temporary file left


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (sheet(offers={"a": 1}), "offers must be a list"),
        (sheet(date="yesterday"), "date must be YYYY-MM-DD"),
        (sheet(source=" "), "source must say"),
        ({k: v for k, v in sheet().items() if k != "offers"}, "KeyError"),
        (sheet(offers=[{"id": "x", "vcpus": 1, "memory_gib": 1, "price_per_hour": float("nan")}]), "finite"),
        (sheet(offers=[{"id": "x", "vcpus": 1, "memory_gib": 1, "price_per_hour": -1}]), "price_per_hour"),
        (sheet(offers=[{"id": "x", "vcpus": 0, "memory_gib": 1, "price_per_hour": 1}]), "vcpus > 0"),
        (
            sheet(offers=[{"id": "x", "vcpus": 1, "memory_gib": 1, "price_per_hour": 1, "gpu_count": 2}]),
            "gpu_type",
        ),
        (sheet(offers=[{"id": "x", "vcpus": "many", "memory_gib": 1, "price_per_hour": 1}]), "ValueError"),
        (sheet(offers=["x"]), "TypeError"),
        ([], "TypeError"),
    ],
)
def test_malformed_sheets_are_refused_with_where_and_what(data: Any, what: str) -> None:
    with pytest.raises(pricing.PriceSheetError) as e:
        pricing.parse_sheet(data, "sheet.json")
    assert str(e.value).startswith("sheet.json: malformed price sheet") and what in str(e.value)


def test_a_sheet_for_another_provider_or_a_hostile_name_is_refused(home: Path) -> None:
    (home / "prices").mkdir(parents=True)
    (home / "prices" / "exoscale.json").write_text(json.dumps(sheet()), encoding="utf-8")
    with pytest.raises(pricing.PriceSheetError, match="for 'runpod', not 'exoscale'"):
        pricing.load_sheet("exoscale")
    (home / "prices" / "vastai.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(pricing.PriceSheetError, match="cannot read price sheet"):
        pricing.load_sheet("vastai")
    for bad in ("../../etc/passwd", "x/y", "", "A"):
        with pytest.raises(pricing.PriceSheetError, match="not a provider name"):
            pricing.load_sheet(bad)
    with pytest.raises(pricing.PriceSheetError, match="not a provider name"):
        pricing.save_sheet(pricing.PriceSheet("../x", "2030-01-01", "s", "USD", ()))
