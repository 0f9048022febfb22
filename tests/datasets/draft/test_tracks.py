"""Split a track (from a frame on it is another object) and merge two tracks (the same object)."""

from __future__ import annotations

from tests.datasets.conftest import make_draft


async def _put(client, url, frame, objects):
    response = await client.put(f"{url}/keyframes/{frame}", json={"objects": objects})
    assert response.status_code == 200, response.text


def _tracks(keyframes: dict) -> dict[int, list[int]]:
    return {k["frame"]: sorted(o["track_id"] for o in k["objects"]) for k in keyframes["keyframes"]}


async def test_split_then_merge_back(user_client):
    dataset = await make_draft(user_client)  # track 1 on frame 0
    url = f"/api/v1/datasets/{dataset['id']}"
    await _put(user_client, url, 40, [{"track_id": 1, "class": "person", "box": [150, 130, 170, 180]}])
    await _put(user_client, url, 80, [{"track_id": 1, "class": "person", "box": [120, 120, 140, 170]}])

    split = await user_client.post(f"{url}/tracks/1/split", json={"frame": 40})
    assert split.status_code == 200, split.text
    assert _tracks(split.json()) == {0: [1], 40: [2], 80: [2]}

    merged = await user_client.post(f"{url}/tracks/2/merge", json={"into": 1})
    assert merged.status_code == 200 and _tracks(merged.json()) == {0: [1], 40: [1], 80: [1]}


async def test_refusals_say_why_and_change_nothing(user_client):
    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}"
    await _put(user_client, url, 0, [{"track_id": 1, "class": "person", "box": [205, 151, 222, 201]},
                                     {"track_id": 2, "class": "person", "box": [10, 10, 30, 60]}])
    both = await user_client.post(f"{url}/tracks/2/merge", json={"into": 1})
    assert both.status_code == 422 and "both on frame 0" in both.json()["detail"]
    nothing_before = await user_client.post(f"{url}/tracks/1/split", json={"frame": 0})
    assert nothing_before.status_code == 422 and "before frame 0" in nothing_before.json()["detail"]
    missing = await user_client.post(f"{url}/tracks/9/split", json={"frame": 5})
    assert missing.status_code == 422 and "no track 9" in missing.json()["detail"]
    unknown = await user_client.post(f"{url}/tracks/1/split", json={"frame": 5, "at": 3})
    assert unknown.status_code == 422
    keyframes = (await user_client.get(f"{url}/keyframes")).json()
    assert _tracks(keyframes) == {0: [1, 2]}
