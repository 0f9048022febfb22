"""Keyframes over the API: replace, list, delete, validation (each error its own message,
nothing stored on error) and the seeds handed to the propagation engine."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from src.datasets.draft import service
from src.datasets.draft.models import Keyframe

HELMET = {"track_id": 1, "class": "helmet", "box": [10, 20, 60, 80]}
PERSON = {"track_id": 2, "class": "person", "box": [100, 30, 180, 230]}


def kf_url(draft, frame=None):
    base = f"/api/v1/datasets/{draft['id']}/keyframes"
    return base if frame is None else f"{base}/{frame}"


async def put(client, draft, frame, objects):
    return await client.put(kf_url(draft, frame), json={"objects": objects})


async def listed(client, draft):
    response = await client.get(kf_url(draft))
    assert response.status_code == 200
    return response.json()["keyframes"]


async def stored_objects(app, draft, frame):
    async with app.state.sessionmaker() as session:
        query = select(Keyframe.objects).where(Keyframe.dataset_id == uuid.UUID(draft["id"]), Keyframe.frame == frame)
        return (await session.scalars(query)).one_or_none()


async def test_put_list_replace_and_delete(app, user_client, draft):
    response = await put(user_client, draft, 0, [HELMET, PERSON])
    assert response.status_code == 200, response.text
    assert response.json() == {"frame": 0, "objects": [
        {"track_id": 1, "class": "helmet", "box": [10.0, 20.0, 60.0, 80.0]},
        {"track_id": 2, "class": "person", "box": [100.0, 30.0, 180.0, 230.0]},
    ]}
    # stored with class ids, answered with names
    helmet_id = draft["classes"][0]["id"]
    assert (await stored_objects(app, draft, 0))[0] == {"track_id": 1, "class_id": helmet_id, "box": [10.0, 20.0, 60.0, 80.0]}

    assert (await put(user_client, draft, 119, [{**HELMET, "box": [300, 200, 360, 240]}])).status_code == 200
    assert [k["frame"] for k in await listed(user_client, draft)] == [0, 119]
    assert (await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()["keyframes"] == [0, 119]

    # PUT replaces the frame's boxes
    assert (await put(user_client, draft, 0, [PERSON])).status_code == 200
    assert (await listed(user_client, draft))[0]["objects"] == [{**PERSON, "box": [100.0, 30.0, 180.0, 230.0]}]

    # an empty list removes the keyframe; DELETE removes one too
    assert (await put(user_client, draft, 0, [])).json() == {"frame": 0, "objects": []}
    assert [k["frame"] for k in await listed(user_client, draft)] == [119]
    assert (await user_client.delete(kf_url(draft, 119))).status_code == 204
    assert await listed(user_client, draft) == []
    response = await user_client.delete(kf_url(draft, 119))
    assert response.status_code == 404
    assert response.json()["detail"] == "Frame 119 is not a keyframe of this dataset"


async def test_two_objects_of_one_class_and_gone_marker(user_client, draft):
    people = [{**PERSON, "track_id": 1}, {**PERSON, "track_id": 2, "box": [200, 30, 260, 230]}]
    assert (await put(user_client, draft, 0, people)).status_code == 200
    later = [{"track_id": 1, "gone": True}, {**PERSON, "track_id": 2, "box": [210, 30, 270, 230]}]
    response = await put(user_client, draft, 40, later)
    assert response.status_code == 200, response.text
    assert response.json()["objects"][0] == {"track_id": 1, "gone": True}


async def test_box_within_half_a_pixel_is_clipped(user_client, draft):
    response = await put(user_client, draft, 3, [{**HELMET, "box": [-0.4, -0.5, 360.5, 240.3]}])
    assert response.status_code == 200, response.text
    assert response.json()["objects"][0]["box"] == [0.0, 0.0, 360.0, 240.0]


async def test_box_partly_outside_is_clipped(user_client, draft):
    """An object entering at the edge is drawn partly outside the frame: clipped, not refused."""
    response = await put(user_client, draft, 3, [{**HELMET, "box": [300, 200, 420, 230]}, {**PERSON, "box": [-30, -3, 50, 50]}])
    assert response.status_code == 200, response.text
    assert [o["box"] for o in response.json()["objects"]] == [[300.0, 200.0, 360.0, 230.0], [0.0, 0.0, 50.0, 50.0]]


INVALID = {
    "unknown class": (
        0, [{"track_id": 1, "class": "bicycle", "box": [10, 10, 50, 50]}],
        "Track 1: unknown class 'bicycle'; add it to the dataset first.",
    ),
    "box outside the frame": (
        0, [{**HELMET, "box": [361, 200, 400, 230]}],
        "Track 1: the box [361.0, 200.0, 400.0, 230.0] is outside the 360x240 frame.",
    ),
    "box above the frame": (
        0, [{**HELMET, "box": [10, -53, 50, -3]}],
        "Track 1: the box [10.0, -53.0, 50.0, -3.0] is outside the 360x240 frame.",
    ),
    "tiny box": (
        0, [{**HELMET, "box": [10, 10, 11.5, 30]}],
        "Track 1: the box is smaller than 2x2 pixels.",
    ),
    "tiny after clipping": (
        0, [{**HELMET, "box": [358.5, 10, 360.5, 30]}],
        "Track 1: the box is smaller than 2x2 pixels.",
    ),
    "x2 before x1": (
        0, [{**HELMET, "box": [50, 10, 10, 30]}],
        "Track 1: the box needs x2 > x1 and y2 > y1, got [50.0, 10.0, 10.0, 30.0].",
    ),
    "three numbers": (
        0, [{**HELMET, "box": [50, 10, 10]}],
        "Track 1: a box is four numbers [x1, y1, x2, y2].",
    ),
    "frame beyond the video": (
        120, [HELMET], "Frame 120 is outside the video: frames are numbered 0 to 119.",
    ),
    "negative frame": (
        -1, [HELMET], "Frame -1 is outside the video: frames are numbered 0 to 119.",
    ),
    "duplicate track ids": (
        0, [HELMET, {**PERSON, "track_id": 1}],
        "Track 1 appears twice on frame 0; each object needs its own track id.",
    ),
    "gone marker for unknown track": (
        0, [HELMET, {"track_id": 7, "gone": True}],
        "Track 7 cannot be gone on frame 0: it has no box on an earlier keyframe.",
    ),
    "gone marker for a track only seen later": (
        0, [{"track_id": 3, "gone": True}],
        "Track 3 cannot be gone on frame 0: it has no box on an earlier keyframe.",
    ),
    "track id zero": (
        0, [{**HELMET, "track_id": 0}], "Track ids are positive whole numbers, got 0.",
    ),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
async def test_invalid_keyframe_is_refused_and_nothing_stored(app, user_client, draft, case):
    frame, objects, message = INVALID[case]
    # what was there before stays exactly as it was
    assert (await put(user_client, draft, 0, [PERSON])).status_code == 200
    assert (await put(user_client, draft, 50, [{**PERSON, "track_id": 3}])).status_code == 200
    before = await listed(user_client, draft)

    response = await put(user_client, draft, frame, objects)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == message
    assert await listed(user_client, draft) == before


async def test_deleting_the_first_box_of_a_track_drops_its_later_gone_marker(user_client, draft):
    await put(user_client, draft, 0, [HELMET, PERSON])
    await put(user_client, draft, 10, [{"track_id": 1, "gone": True}, PERSON])
    await put(user_client, draft, 0, [PERSON])
    frames = await listed(user_client, draft)
    assert frames[1] == {"frame": 10, "objects": [{**PERSON, "box": [100.0, 30.0, 180.0, 230.0]}]}


async def test_seeds_for_engine(app, user_client, draft):
    await put(user_client, draft, 0, [HELMET, PERSON])
    await put(user_client, draft, 60, [{"track_id": 1, "gone": True}, {**PERSON, "box": [110, 30, 190, 230]}])
    async with app.state.sessionmaker() as session:
        seeds = await service.seeds_for_engine(session, dataset_id=uuid.UUID(draft["id"]))
    assert seeds == {
        0: [
            {"track_id": 1, "class": "helmet", "box": [10.0, 20.0, 60.0, 80.0]},
            {"track_id": 2, "class": "person", "box": [100.0, 30.0, 180.0, 230.0]},
        ],
        60: [
            {"track_id": 1, "gone": True},
            {"track_id": 2, "class": "person", "box": [110.0, 30.0, 190.0, 230.0]},
        ],
    }


async def test_a_track_has_one_class_on_every_keyframe(app, user_client, draft):
    """Setting a track's class on one keyframe sets it on the track's other keyframes (the
    engine and the exports know one class per track); other tracks are left alone."""
    assert (await put(user_client, draft, 0, [HELMET, PERSON])).status_code == 200
    assert (await put(user_client, draft, 50, [{**HELMET, "box": [20, 20, 70, 80]}, PERSON])).status_code == 200
    relabeled = await put(user_client, draft, 100, [{**HELMET, "class": "person", "box": [30, 20, 80, 80]}])
    assert relabeled.status_code == 200, relabeled.text
    classes = {(k["frame"], o["track_id"]): o["class"] for k in await listed(user_client, draft) for o in k["objects"]}
    assert classes == {(0, 1): "person", (0, 2): "person", (50, 1): "person", (50, 2): "person", (100, 1): "person"}
    async with app.state.sessionmaker() as session:
        seeds = await service.seeds_for_engine(session, dataset_id=uuid.UUID(draft["id"]))
    assert {o["class"] for objs in seeds.values() for o in objs if o["track_id"] == 1} == {"person"}
