"""The in-memory reader follows edits by deltas: after any edits it answers exactly as a reader loaded afresh.

A second store object on the same store (the file, or the database) stands for another worker process making
the edits; on every backend.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import shapely
import shapely.affinity

from geoapp.store import open_store
from geoapp.store.base import Actor, Query
from geoapp.store.memindex import MemIndex

ACTOR = Actor("tester", "cli", roles=frozenset({"admin"}))
LAYERS = ("manhole_covers", "construction_hoardings")
pytestmark = pytest.mark.backends("gpkg", "postgis")


def _queries(rng: np.random.Generator, layer_id: str) -> list[Query]:
    out = [Query(), Query(filters={"status": ["to_fix" if layer_id == "manhole_covers" else "pending"]})]
    for _ in range(6):
        x, y = rng.uniform(113.27, 113.33), rng.uniform(33.71, 33.75)
        out += [
            Query(bbox=(x, y, x + 0.01, y + 0.008)),
            Query(near=(x, y, float(rng.uniform(50, 800)))),
            Query(nearest=(x, y, int(rng.integers(1, 40)))),
            Query(within=shapely.box(x, y, x + 0.006, y + 0.004).buffer(0.001)),
        ]
    return out


def _answers(reader: MemIndex, layer_id: str, queries: list[Query]):
    out = []
    for query in queries:
        page = reader.select(layer_id, query, 0, 100_000, "internal")
        distances = None if page.distances is None else np.round(page.distances, 6).tolist()
        out.append((page.ids, distances, [orjson.loads(f)["properties"] for f in page.features[:50]]))
    return out


def _edit(store, rng: np.random.Generator, layer_id: str, n: int) -> None:
    """Random inserts, moves, attribute changes and deletes, as another worker would make them."""
    reader = MemIndex(store)
    for _ in range(n):
        fids = reader.select(layer_id, Query(), 0, 10**7).ids
        fid = int(rng.choice(fids))
        current = store.get(layer_id, fid)
        action = rng.choice(["insert", "move", "status", "delete"])
        if action == "insert":
            x, y = rng.uniform(113.28, 113.32), rng.uniform(33.72, 33.74)
            if layer_id == "manhole_covers":
                props = {"code": f"41990101019{rng.integers(10**5):05d}", "kind": "storm", "status": "to_fix"}
                geometry = shapely.Point(x, y)
            else:
                props = {"site": f"新工地{rng.integers(10**5)}", "agency": "housing", "status": "pending"}
                geometry = shapely.LineString([(x, y), (x + 0.001, y + 0.0005)])
            store.insert(layer_id, props, geometry, actor=ACTOR)
        elif action == "move":
            moved = shapely.affinity.translate(current.geometry, *rng.uniform(-0.004, 0.004, 2))
            store.update(layer_id, fid, geometry=moved, expected_version=current.version, actor=ACTOR)
        elif action == "status":
            values = ("fixed", "to_fix") if layer_id == "manhole_covers" else ("pending", "removed")
            status = values[int(current.properties["status"] == values[0])]
            # the bureau's rules: a fixed cover has its date, a removed hoarding its date and treatment
            done = {
                "fixed": {"fixed_on": "2023-06-01"},
                "removed": {"removed_on": "2023-06-01", "treatment": "greened"},
            }
            changes = {"status": status, **done.get(status, {})}
            store.update(layer_id, fid, changes, expected_version=current.version, actor=ACTOR)
        else:
            store.delete(layer_id, fid, expected_version=current.version, actor=ACTOR)


@pytest.mark.parametrize("layer_id", LAYERS)
def test_a_reader_that_followed_edits_answers_like_a_fresh_one(registry, database, layer_id):

    following = MemIndex(open_store(registry, str(database)), merge_after=10**6)
    rng = np.random.default_rng(5)
    queries = _queries(rng, layer_id)
    _answers(following, layer_id, queries)  # builds its base now
    base = following.snapshot(layer_id).base
    writer = open_store(registry, str(database))
    for round_ in range(3):
        _edit(writer, rng, layer_id, 25)
        fresh = MemIndex(open_store(registry, str(database)))
        assert _answers(following, layer_id, queries) == _answers(fresh, layer_id, queries), f"round {round_}"
        assert following.summary()[layer_id] == fresh.summary()[layer_id]
        assert following.count(layer_id, {"status": ["to_fix", "pending"]}) == fresh.count(
            layer_id, {"status": ["to_fix", "pending"]}
        )
    snap = following.snapshot(layer_id)
    assert snap.base is base and len(snap.changed) > 0  # every edit arrived as a delta over the same base
    writer.close()


def test_a_new_base_is_built_in_the_background_and_answers_stay_the_same(registry, database):

    layer_id = "manhole_covers"
    following = MemIndex(open_store(registry, str(database)), merge_after=10)
    rng = np.random.default_rng(9)
    queries = _queries(rng, layer_id)
    _answers(following, layer_id, queries)
    first = following.snapshot(layer_id).base
    writer = open_store(registry, str(database))
    _edit(writer, rng, layer_id, 30)
    _answers(following, layer_id, queries)  # sees 30 changes: more than merge_after, so a merge starts
    following.wait_for_merges()
    _edit(writer, rng, layer_id, 3)  # changes made after the new base are laid over it
    fresh = MemIndex(open_store(registry, str(database)))
    assert _answers(following, layer_id, queries) == _answers(fresh, layer_id, queries)
    snap = following.snapshot(layer_id)
    assert snap.base is not first and len(snap.changed) <= 3 + 10
    writer.close()


def test_search_and_get_follow_edits(registry, database):
    reader = MemIndex(open_store(registry, str(database)))
    assert reader.search("新命名的井盖", 10) == []
    writer = open_store(registry, str(database))
    current = writer.get("heating_stations", 5)
    writer.update("heating_stations", 5, {"name": "新命名的井盖站"}, expected_version=current.version, actor=ACTOR)
    hits = reader.search("新命名的井盖", 10)
    assert [(h["layer"], h["id"]) for h in hits] == [("heating_stations", 5)]
    assert reader.get("heating_stations", 5).version == current.version + 1
    writer.delete("heating_stations", 5, expected_version=current.version + 1, actor=ACTOR)
    assert reader.get("heating_stations", 5) is None
    assert reader.search("新命名的井盖", 10) == []
    writer.close()
