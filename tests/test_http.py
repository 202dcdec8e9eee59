"""HTTP semantics a client relies on: the ETag a GET returns is the If-Match of the next change."""

from __future__ import annotations

import pytest

from tests.conftest import login

FEATURE = "/api/layers/construction_hoardings/features/3"


@pytest.fixture
def planner(client, users):
    _, csrf = login(client, "planner")
    return client, {"X-CSRFToken": csrf}


def test_a_get_etag_is_the_if_match_of_a_change_and_then_stale(planner):
    client, headers = planner
    read = client.get(FEATURE)
    etag = read.headers["ETag"]
    assert not etag.startswith("W/")  # a strong validator: If-Match compares strongly
    changed = client.patch(
        FEATURE,
        json={"properties": {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"}},
        headers={**headers, "If-Match": etag},
    )
    assert changed.status_code == 200
    assert changed.get_json()["version"] == read.get_json()["version"] + 1
    assert changed.headers["ETag"] != etag
    stale = client.patch(FEATURE, json={"properties": {"status": "pending"}}, headers={**headers, "If-Match": etag})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "version_conflict"
    assert client.get(FEATURE).get_json()["properties"]["status"] == "removed"  # nothing was overwritten
    fresh = client.get(FEATURE).headers["ETag"]
    assert client.delete(FEATURE, headers={**headers, "If-Match": fresh}).status_code == 204


def test_a_compressed_answers_etag_works_as_if_match_too(planner):
    client, headers = planner
    read = client.get(FEATURE, headers={"Accept-Encoding": "gzip"})
    etag = read.headers["ETag"]
    changed = client.patch(
        FEATURE,
        json={"properties": {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"}},
        headers={**headers, "If-Match": etag},
    )
    assert changed.status_code == 200


def test_the_etag_differs_for_the_public_and_for_staff(client, planner):
    staff_client, _ = planner
    staff = staff_client.get(FEATURE)
    anonymous = client.application.test_client().get(FEATURE)
    assert staff.get_json()["version"] == anonymous.get_json()["version"]
    assert staff.headers["ETag"] != anonymous.headers["ETag"]  # the two bodies differ: so must their validators
    assert set(staff.headers["Cache-Control"].split(", ")) == {"private", "no-store"}


@pytest.mark.parametrize("fid", ["abc", "3.0", "０３", "٣", "-3", "0", "99999999999999999999"])
def test_a_feature_id_that_names_no_feature_answers_404(client, fid):
    response = client.get(f"/api/layers/construction_hoardings/features/{fid}")
    assert response.status_code == 404
    assert response.get_json()["error"]["parameter"] == "fid"


@pytest.mark.parametrize("url", ["/api/layers", "/api/stats"])
def test_layers_and_stats_carry_an_etag_that_follows_every_change(planner, url):
    client, headers = planner
    first = client.get(url)
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    etag = client.get(FEATURE).headers["ETag"]
    client.patch(
        FEATURE,
        json={"properties": {"status": "removed", "removed_on": "2023-06-01", "treatment": "levelled"}},
        headers={**headers, "If-Match": etag},
    )
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200 and again.headers["ETag"] != first.headers["ETag"]


def test_the_archive_form_without_a_version_answers_428_like_the_api(planner):
    client, headers = planner
    response = client.post(
        "/features/construction_hoardings/3/status",
        data={"status": "removed", "csrf_token": headers["X-CSRFToken"]},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 428
    assert response.get_json()["error"]["parameter"] == "version"
