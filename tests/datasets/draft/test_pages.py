"""The draft pages: new-dataset form, classes with HTMX, keyframe thumbnails, "Create dataset"."""

from __future__ import annotations

import re

from sqlalchemy import text

HTMX = {"HX-Request": "true", "accept": "text/html"}
HTML = {"accept": "text/html"}


async def put_box(client, draft, frame=0, class_name="helmet"):
    body = {"objects": [{"track_id": 1, "class": class_name, "box": [36, 24, 72, 48]}]}
    response = await client.put(f"/api/v1/datasets/{draft['id']}/keyframes/{frame}", json=body)
    assert response.status_code == 200, response.text


async def test_new_dataset_form_creates_draft_and_opens_editor(user_client, uploaded_video):
    url = f"/videos/{uploaded_video['id']}/new-dataset"
    page = await user_client.get(url, headers=HTML)
    assert page.status_code == 200
    assert 'name="classes"' in page.text

    response = await user_client.post(url, data={"name": "Yard", "classes": "helmet, person ,, vest"}, headers=HTML)
    assert response.status_code == 303
    match = re.fullmatch(r".*/datasets/([0-9a-f-]+)/editor", response.headers["location"])
    assert match
    draft = (await user_client.get(f"/api/v1/datasets/{match[1]}")).json()
    assert draft["name"] == "Yard"
    assert [c["name"] for c in draft["classes"]] == ["helmet", "person", "vest"]

    editor = await user_client.get(response.headers["location"], headers=HTML)
    assert editor.status_code == 200
    assert 'id="editor-data"' in editor.text and "js/editor.js" in editor.text
    assert "<script>" not in editor.text  # CSP: no inline scripts


async def test_new_dataset_form_shows_errors_inline(app, user_client, uploaded_video):
    url = f"/videos/{uploaded_video['id']}/new-dataset"
    response = await user_client.post(url, data={"name": "Yard", "classes": "cat, Cat"}, headers=HTMX)
    assert response.status_code == 409
    assert "already a class named &#39;Cat&#39;" in response.text
    assert "<html" not in response.text  # only the form block
    async with app.state.engine.connect() as conn:  # nothing was created
        assert (await conn.execute(text("SELECT count(*) FROM dataset"))).scalar() == 0


async def test_draft_page_shows_classes_and_keyframe_thumbnails(user_client, draft):
    await put_box(user_client, draft, 0)
    await put_box(user_client, draft, 30, "person")
    page = await user_client.get(f"/datasets/{draft['id']}", headers=HTML)
    assert page.status_code == 200
    assert page.text.count('class="class-row"') == 2
    assert page.text.count('class="kf-thumb"') == 2
    assert f"/api/v1/videos/{draft['video_id']}/frames/30?width=240" in page.text
    # the box [36, 24, 72, 48] of a 360x240 frame: 10% from the left, 10% from the top, 10% wide
    assert "left:10.0%;top:10.0%;width:10.0%;height:10.0%" in page.text
    assert f"/datasets/{draft['id']}/editor" in page.text


async def test_add_rename_and_remove_classes_with_htmx(user_client, draft):
    base = f"/datasets/{draft['id']}/classes"
    response = await user_client.post(base, data={"name": " vest "}, headers=HTMX)
    assert response.status_code == 200
    assert 'value="vest"' in response.text and "<html" not in response.text

    response = await user_client.post(base, data={"name": "VEST"}, headers=HTMX)
    assert response.status_code == 409
    assert "already a class named" in response.text

    helmet = draft["classes"][0]
    response = await user_client.post(f"{base}/{helmet['id']}", data={"name": "hat", "color": "#112233"}, headers=HTMX)
    assert response.status_code == 200
    assert 'value="hat"' in response.text and 'value="#112233"' in response.text

    # removing a used class asks first, then removes it and its boxes
    await put_box(user_client, draft, 0, "hat")
    response = await user_client.post(f"{base}/{helmet['id']}/delete", data={}, headers=HTMX)
    assert response.status_code == 200
    assert "1 box uses the class &#39;hat&#39;." in response.text
    assert 'name="force" value="true"' in response.text
    assert len((await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()["classes"]) == 3

    response = await user_client.post(f"{base}/{helmet['id']}/delete", data={"force": "true"}, headers=HTMX)
    assert response.status_code == 200
    read = (await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()
    assert [c["name"] for c in read["classes"]] == ["person", "vest"]
    assert read["keyframes"] == []


async def test_plain_form_post_redirects_back(user_client, draft):
    response = await user_client.post(f"/datasets/{draft['id']}/classes", data={"name": "dog"}, headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/datasets/{draft['id']}")


async def test_create_dataset_needs_a_box(user_client, draft):
    url = f"/datasets/{draft['id']}/check"
    response = await user_client.post(url, headers=HTMX)
    assert response.status_code == 422
    assert "Draw at least one box on a keyframe before creating the dataset." in response.text

    await put_box(user_client, draft)
    response = await user_client.post(url, headers=HTMX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/datasets/{draft['id']}/create"
    response = await user_client.post(url, headers=HTML)
    assert response.status_code == 303
