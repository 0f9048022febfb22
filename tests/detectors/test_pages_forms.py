"""The model forms work as plain posts: an upload is refused inline, a training request with
no dataset is refused inline, and the create page offers ready models."""

from __future__ import annotations


async def test_upload_form_refuses_a_text_file_inline(user_client):
    token = user_client.headers.pop("X-CSRF-Token")  # a plain form: the token is its first field
    response = await user_client.post("/models/upload",
                                      files={"file": ("notes.pt", b"not a model at all", "application/octet-stream")},
                                      data={"csrf_token": token, "name": "bad"}, headers={"accept": "text/html"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert (await user_client.get("/api/v1/models")).json() == []


async def test_train_form_without_datasets_is_refused_inline(user_client):
    response = await user_client.post("/models/train", data={"name": "m1"}, headers={"accept": "text/html"})
    assert response.status_code == 422 and "dataset_ids" in response.text
