"""Label classes of a draft: trimmed, unique (case-insensitive), 1-64 characters, colours."""

from __future__ import annotations

import pytest


def url(draft, suffix=""):
    return f"/api/v1/datasets/{draft['id']}/classes{suffix}"


async def classes(client, draft) -> list[dict]:
    return (await client.get(f"/api/v1/datasets/{draft['id']}")).json()["classes"]


async def test_add_trims_and_assigns_palette_colour(user_client, draft):
    response = await user_client.post(url(draft), json={"name": "  safety vest  "})
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["name"] == "safety vest"
    assert added["position"] == 2
    assert added["color"] not in {c["color"] for c in draft["classes"]}
    assert [c["name"] for c in await classes(user_client, draft)] == ["helmet", "person", "safety vest"]


async def test_add_with_colour(user_client, draft):
    response = await user_client.post(url(draft), json={"name": "car", "color": "#A0B1C2"})
    assert response.status_code == 201
    assert response.json()["color"] == "#a0b1c2"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "Helmet"}, 409, "There is already a class named 'Helmet' in this dataset."),
        ({"name": " PERSON "}, 409, "There is already a class named 'PERSON' in this dataset."),
        ({"name": "   "}, 422, "A class name must be 1 to 64 characters."),
        ({"name": "x" * 65}, 422, "A class name must be 1 to 64 characters."),
        ({"name": "car", "color": "red"}, 422, "'red' is not a colour; use #rrggbb, e.g. #e6194b."),
        ({"name": "car", "color": "#12345g"}, 422, "'#12345g' is not a colour; use #rrggbb, e.g. #e6194b."),
    ],
)
async def test_add_refused(user_client, draft, body, status, message):
    response = await user_client.post(url(draft), json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"] == message
    assert len(await classes(user_client, draft)) == 2


async def test_name_of_64_characters_is_fine(user_client, draft):
    response = await user_client.post(url(draft), json={"name": "y" * 64})
    assert response.status_code == 201


async def test_rename_and_recolour(user_client, draft):
    helmet = draft["classes"][0]
    response = await user_client.patch(url(draft, f"/{helmet['id']}"), json={"name": " hard hat "})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "hard hat"
    assert response.json()["color"] == helmet["color"]
    response = await user_client.patch(url(draft, f"/{helmet['id']}"), json={"color": "#00ff00"})
    assert response.json() == {**helmet, "name": "hard hat", "color": "#00ff00"}
    # changing only the case of its own name is fine; taking another class's name is not
    assert (await user_client.patch(url(draft, f"/{helmet['id']}"), json={"name": "Hard Hat"})).status_code == 200
    response = await user_client.patch(url(draft, f"/{helmet['id']}"), json={"name": "Person"})
    assert response.status_code == 409
    # a bad colour leaves the name as it was, too
    response = await user_client.patch(url(draft, f"/{helmet['id']}"), json={"name": "cap", "color": "green"})
    assert response.status_code == 422
    assert [c["name"] for c in await classes(user_client, draft)] == ["Hard Hat", "person"]


async def test_rename_keeps_boxes_and_answers_new_name(user_client, draft):
    helmet = draft["classes"][0]
    body = {"objects": [{"track_id": 1, "class": "helmet", "box": [10, 10, 50, 50]}]}
    assert (await user_client.put(f"/api/v1/datasets/{draft['id']}/keyframes/0", json=body)).status_code == 200
    await user_client.patch(url(draft, f"/{helmet['id']}"), json={"name": "hat"})
    keyframes = (await user_client.get(f"/api/v1/datasets/{draft['id']}/keyframes")).json()["keyframes"]
    assert keyframes[0]["objects"][0]["class"] == "hat"


async def test_unknown_class_id_is_404(user_client, draft):
    assert (await user_client.patch(url(draft, "/999999"), json={"name": "a"})).status_code == 404
    assert (await user_client.delete(url(draft, "/999999"))).status_code == 404


async def test_remove_unused_class(user_client, draft):
    person = draft["classes"][1]
    assert (await user_client.delete(url(draft, f"/{person['id']}"))).status_code == 204
    assert [c["name"] for c in await classes(user_client, draft)] == ["helmet"]


async def test_remove_class_with_boxes_asks_then_force_removes_boxes(user_client, draft):
    helmet = draft["classes"][0]
    kf = f"/api/v1/datasets/{draft['id']}/keyframes"
    frame0 = {"objects": [
        {"track_id": 1, "class": "helmet", "box": [10, 10, 50, 50]},
        {"track_id": 2, "class": "person", "box": [60, 10, 120, 200]},
    ]}
    frame5 = {"objects": [{"track_id": 1, "class": "helmet", "box": [12, 10, 52, 50]}]}
    frame9 = {"objects": [{"track_id": 1, "gone": True}, {"track_id": 2, "class": "person", "box": [70, 10, 130, 200]}]}
    for frame, body in ((0, frame0), (5, frame5), (9, frame9)):
        assert (await user_client.put(f"{kf}/{frame}", json=body)).status_code == 200

    response = await user_client.delete(url(draft, f"/{helmet['id']}"))
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "2 boxes use the class 'helmet'. Confirm to remove the class and its boxes (force=true)."
    )
    assert len(await classes(user_client, draft)) == 2

    response = await user_client.delete(url(draft, f"/{helmet['id']}"), params={"force": "true"})
    assert response.status_code == 204
    assert [c["name"] for c in await classes(user_client, draft)] == ["person"]
    keyframes = (await user_client.get(kf)).json()["keyframes"]
    # frame 5 had only helmet boxes: gone; the gone marker of track 1 on frame 9 has no track left
    assert keyframes == [
        {"frame": 0, "objects": [{"track_id": 2, "class": "person", "box": [60.0, 10.0, 120.0, 200.0]}]},
        {"frame": 9, "objects": [{"track_id": 2, "class": "person", "box": [70.0, 10.0, 130.0, 200.0]}]},
    ]
