"""Video sanity (issue 16, item 8): absurd frame rates and extreme aspect ratios are refused at
upload with their own messages, nothing is stored; the limits themselves are accepted."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.videos.conftest import stored_files, upload


def _video(path, width: int, height: int, fps: float, frames: int = 10):
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(frames):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, : (i * 7) % width] = 200
        out.write(frame)
    out.release()
    return path


@pytest.mark.parametrize("width, height, fps, says", [
    (64, 48, 1000, "The frame rate is 1000 fps; videos up to 240 fps"),
    (64, 48, 500, "The frame rate is 500 fps"),
    (2048, 16, 25, "The picture is 2048x16, an aspect ratio of 128:1; at most 8:1"),
    (16, 400, 25, "The picture is 16x400, an aspect ratio of 25:1"),
])
async def test_absurd_videos_are_refused_with_their_own_message(user_client, tmp_path, storage_root,
                                                                width, height, fps, says):
    response = await upload(user_client, _video(tmp_path / "odd.mp4", width, height, fps))
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert stored_files(storage_root) == []
    assert (await user_client.get("/api/v1/videos")).json() == []


@pytest.mark.parametrize("width, height, fps", [(640, 80, 240), (80, 640, 30)])
async def test_the_limits_themselves_are_accepted(user_client, tmp_path, width, height, fps):
    response = await upload(user_client, _video(tmp_path / "edge.mp4", width, height, fps))
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (width, height)
