"""A store made before a layer declared a field gets the field from `geoapp db upgrade`, keeping its features."""

from __future__ import annotations

import pytest

from geoapp.core.layers import Registry
from geoapp.store import create_store, open_store, upgrade_store
from tests.conftest import SETUP

pytestmark = pytest.mark.backends("gpkg", "postgis")

#: fields declared after the first stores were made: the campaign's target dates
LATER = {"construction_hoardings": "due_on", "backstreet_repairs": "due_on"}


def _without_later_fields(registry: Registry) -> Registry:
    layers = []
    for layer in registry:
        name = LATER.get(layer.id)
        if name:
            layer = layer.model_copy(
                update={
                    "fields": tuple(f for f in layer.fields if f.name != name),
                    "popup": tuple(p for p in layer.popup if p != name),
                    "progress": None,
                }
            )
        layers.append(layer)
    return Registry(layers)


def test_upgrade_adds_the_fields_declared_since_and_keeps_every_feature(registry, demo_data, location):
    older = _without_later_fields(registry)
    data = {k: v.drop(columns=[LATER[k]]) if k in LATER else v for k, v in demo_data.items()}
    store = create_store(older, location, data, demo=True, actor=SETUP)
    store.update("construction_hoardings", 1, {"notes": "edited before the upgrade"}, expected_version=1, actor=SETUP)
    store.close()

    said = upgrade_store(registry, location)
    if not str(location).startswith("postgresql://"):  # the database adds its columns without a word
        assert "construction_hoardings.due_on" in said and "backstreet_repairs.due_on" in said
    store = open_store(registry, location)
    try:
        hoarding = store.get("construction_hoardings", 1)
        assert hoarding.properties["notes"] == "edited before the upgrade"
        assert hoarding.properties["due_on"] is None  # declared since: empty in every feature
        assert store.load("construction_hoardings").fids.size == len(demo_data["construction_hoardings"])
        changed = store.update(
            "construction_hoardings", 1, {"due_on": "2023-12-31"}, expected_version=hoarding.version, actor=SETUP
        )
        assert changed.properties["due_on"] == "2023-12-31"
    finally:
        store.close()
    assert "due_on" not in upgrade_store(registry, location)  # again: nothing more to add
