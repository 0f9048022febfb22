"""The audit page shows what an entry changed, field by field, in words (no JSON blobs)."""

from __future__ import annotations

from src.admin.audit import action_label, changes


def test_only_changed_fields_in_words():
    before = {"role": "user", "is_active": True, "cvat_username": None,
              "quotas": {"max_storage_bytes": None, "max_videos": 10, "max_video_duration_s": None}}
    after = {"role": "annotator", "is_active": True, "cvat_username": None,
             "quotas": {"max_storage_bytes": 20_000_000_000, "max_videos": 10, "max_video_duration_s": 5400}}
    assert changes(before, after) == [
        {"field": "Role", "before": "user", "after": "annotator"},
        {"field": "Quota: Storage", "before": "default", "after": "20 GB"},
        {"field": "Quota: Duration per video", "before": "default", "after": "1 h 30 min"},
    ]


def test_money_and_fields_only_after():
    rows = changes({"balance_cents": 0}, {"balance_cents": 2500, "amount_cents": 2500, "reason": "welcome"}, currency="EUR")
    assert rows == [
        {"field": "Balance", "before": "0.00 EUR", "after": "25.00 EUR"},
        {"field": "Amount", "before": "", "after": "25.00 EUR"},
        {"field": "Reason", "before": "", "after": "welcome"},
    ]


def test_nothing_changed_and_lists():
    assert changes(None, None) == []
    assert changes({"state": "failed"}, {"state": "failed"}) == []
    rows = changes(None, {"qc_job_id": 3, "accepted_job_ids": [1, 3]})
    assert rows == [{"field": "QC job", "before": "", "after": "3"}, {"field": "Jobs accepted", "before": "", "after": "1; 3"}]


def test_action_labels():
    assert action_label("user.top_up") == "Balance topped up"
    assert action_label("something.new_thing") == "Something new thing"


async def test_audit_page_shows_the_before_and_after_in_words(admin_client, make_client):
    from tests.conftest import register

    other = make_client()
    user = await register(other, "topped@example.com")
    response = await admin_client.post(f"/api/v1/admin/users/{user['id']}/balance",
                                       json={"amount_cents": 2500, "reason": "welcome"})
    assert response.status_code in (200, 201), response.text
    page = (await admin_client.get("/admin/audit")).text
    assert "Balance topped up" in page and "25.00 USD" in page and "welcome" in page
    assert "{&#34;" not in page and '{"balance_cents"' not in page  # no JSON
