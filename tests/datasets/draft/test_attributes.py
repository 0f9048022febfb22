"""Attribute schemas on the draft (API and page form) and attribute values on keyframe boxes."""

from __future__ import annotations

import pytest

HTMX = {"HX-Request": "true", "accept": "text/html"}
ACTION = {"class": "person", "name": "action", "kind": "multi", "values": ["stand", "walk", "sit", "talk"], "mutable": True}


def box(track_id=1, class_name="person", frame_box=(36, 24, 72, 48), **attributes):
    obj = {"track_id": track_id, "class": class_name, "box": list(frame_box)}
    if attributes:
        obj["attributes"] = attributes
    return obj


async def test_create_list_delete_attribute(user_client, draft):
    url = f"/api/v1/datasets/{draft['id']}/attributes"
    created = await user_client.post(url, json=ACTION)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in ACTION} == ACTION
    assert body["default"] == []
    colour = {"class": "helmet", "name": "colour", "kind": "select", "values": ["white", "yellow"], "mutable": False,
              "default": "yellow"}
    assert (await user_client.post(url, json=colour)).status_code == 201
    listed = (await user_client.get(url)).json()["attributes"]
    # classes in their order (helmet, person), then creation order
    assert [(a["class"], a["name"], a["default"], a["mutable"]) for a in listed] == [
        ("helmet", "colour", "yellow", False), ("person", "action", [], True)]
    assert (await user_client.delete(f"{url}/{body['id']}")).status_code == 204
    assert [a["name"] for a in (await user_client.get(url)).json()["attributes"]] == ["colour"]
    assert (await user_client.delete(f"{url}/{body['id']}")).status_code == 404


@pytest.mark.parametrize(("change", "status", "message"), [
    ({"class": "dog"}, 422, "Unknown class 'dog'"),
    ({"kind": "several"}, 422, "Unknown attribute kind"),
    ({"values": []}, 422, "needs its list of values"),
    ({"values": ["walk", "walk"]}, 422, "listed twice"),
    ({"default": ["fly"]}, 422, "'fly'"),
    ({"name": " "}, 422, "1 to 64 characters"),
    ({"kind": "checkbox"}, 422, "has no list of values"),
    ({"kind": "number", "values": [5, 1]}, 422, "[min, max]"),
])
async def test_bad_attribute_is_refused(user_client, draft, change, status, message):
    url = f"/api/v1/datasets/{draft['id']}/attributes"
    response = await user_client.post(url, json={**ACTION, **change})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert (await user_client.get(url)).json()["attributes"] == []


async def test_duplicate_attribute_is_a_conflict(user_client, draft):
    url = f"/api/v1/datasets/{draft['id']}/attributes"
    assert (await user_client.post(url, json=ACTION)).status_code == 201
    response = await user_client.post(url, json={**ACTION, "name": "Action"})
    assert response.status_code == 409
    assert "already has an attribute" in response.json()["detail"]


async def test_keyframe_values_are_checked_against_the_schema(user_client, draft):
    base = f"/api/v1/datasets/{draft['id']}"
    assert (await user_client.post(f"{base}/attributes", json=ACTION)).status_code == 201
    ok = await user_client.put(f"{base}/keyframes/0", json={"objects": [box(action=["walk", "stand"])]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["objects"][0]["attributes"] == {"action": ["stand", "walk"]}  # schema order
    for attributes, message in [
        ({"action": ["fly"]}, "'fly'"),
        ({"mood": "happy"}, "has no attribute 'mood'"),
        ({"action": 3}, "give a list of values"),
    ]:
        bad = await user_client.put(f"{base}/keyframes/5", json={"objects": [box(**attributes)]})
        assert bad.status_code == 422, bad.text
        assert message in bad.json()["detail"] and "Track 1 on frame 5" in bad.json()["detail"]
    # another class's attribute is unknown on a helmet
    bad = await user_client.put(f"{base}/keyframes/5", json={"objects": [box(class_name="helmet", action=["walk"])]})
    assert bad.status_code == 422 and "'helmet' has no attribute 'action'" in bad.json()["detail"]
    keyframes = (await user_client.get(f"{base}/keyframes")).json()["keyframes"]
    assert [k["frame"] for k in keyframes] == [0]


async def test_immutable_value_holds_on_every_keyframe_of_the_track(user_client, draft):
    base = f"/api/v1/datasets/{draft['id']}"
    spec = {"class": "person", "name": "role", "kind": "select", "values": ["guard", "visitor"], "mutable": False}
    assert (await user_client.post(f"{base}/attributes", json=spec)).status_code == 201
    assert (await user_client.put(f"{base}/keyframes/0", json={"objects": [box(role="guard"), box(2)]})).status_code == 200
    assert (await user_client.put(f"{base}/keyframes/9", json={"objects": [box(role="visitor")]})).status_code == 200
    keyframes = (await user_client.get(f"{base}/keyframes")).json()["keyframes"]
    first = {o["track_id"]: o for o in keyframes[0]["objects"]}
    assert first[1]["attributes"] == {"role": "visitor"}
    assert "attributes" not in first[2]


async def test_removing_an_attribute_drops_its_values(user_client, draft):
    base = f"/api/v1/datasets/{draft['id']}"
    created = (await user_client.post(f"{base}/attributes", json=ACTION)).json()
    assert (await user_client.put(f"{base}/keyframes/0", json={"objects": [box(action=["walk"])]})).status_code == 200
    assert (await user_client.delete(f"{base}/attributes/{created['id']}")).status_code == 204
    objects = (await user_client.get(f"{base}/keyframes")).json()["keyframes"][0]["objects"]
    assert "attributes" not in objects[0]


async def test_draft_page_form_adds_and_removes_attributes(user_client, draft):
    page = await user_client.get(f"/datasets/{draft['id']}", headers={"accept": "text/html"})
    assert 'id="add-attribute"' in page.text
    form = {"class_name": "person", "name": "action", "kind": "multi", "values": "stand, walk", "mutable": "true"}
    response = await user_client.post(f"/datasets/{draft['id']}/attributes", data=form, headers=HTMX)
    assert response.status_code == 200, response.text
    assert 'data-name="action"' in response.text and "stand, walk" in response.text
    bad = await user_client.post(f"/datasets/{draft['id']}/attributes", data={**form, "kind": "select", "values": ""},
                                 headers=HTMX)
    assert bad.status_code == 422 and 'id="attribute-error"' in bad.text
    listed = (await user_client.get(f"/api/v1/datasets/{draft['id']}/attributes")).json()["attributes"]
    assert [(a["name"], a["values"], a["mutable"]) for a in listed] == [("action", ["stand", "walk"], True)]
    removed = await user_client.post(f"/datasets/{draft['id']}/attributes/{listed[0]['id']}/delete", headers=HTMX)
    assert removed.status_code == 200 and 'data-name="action"' not in removed.text
