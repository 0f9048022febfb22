"""Every `url_for` in a template names a page route, never a JSON API route of the same name
(the draft page's class forms once posted to the API, which answered 405/422 or raw JSON)."""

from __future__ import annotations

import re

from src.config import ROOT

CALL = re.compile(r"url_for\('(?P<name>[a-z_]+)'(?P<args>[^)]*)\)")


def test_template_links_resolve_to_page_routes():
    from src.main import create_app

    app = create_app()
    seen = 0
    for template in (ROOT / "templates").rglob("*.html"):
        for call in CALL.finditer(template.read_text()):
            name = call["name"]
            if name == "static":
                continue
            params = {key: "1" for key in re.findall(r"(\w+)=", call["args"])}
            path = app.url_path_for(name, **params)
            assert not path.startswith("/api/"), f"{template.name}: url_for('{name}') resolves to the API route {path}"
            seen += 1
    assert seen >= 5
