"""Links in templates come from `url_for` (issue 19): no hard-coded internal path in a
template, every `url_for` names a page route (never a JSON API route of the same name: the
draft page's class forms once posted to the API, which answered 405/422 or raw JSON), and
page routes carry explicit names no other route shares; and a form's refusal is shown one way
(`form_error`)."""

from __future__ import annotations

import ast
import re

from fastapi.routing import APIRoute

from src.config import ROOT

CALL = re.compile(r"url_for\('(?P<name>[a-z_0-9]+)'(?P<args>[^)]*)\)")
# A quoted literal that starts an internal path: "/videos", '/datasets/%s', "/" (not "//cdn", not "/>").
HARD_CODED = re.compile(r"""(?P<q>["'])/(?:[A-Za-z_{]|(?P=q))""")
# Hard-coded paths a template may keep, "template: literal" -> why (none today).
ALLOWED_PATHS: dict[str, str] = {}
# JSON API routes a template may name: resources the browser fetches itself with the session
# cookie (images, downloads) and the endpoint a script posts to. Forms never post to the API.
API_RESOURCES = {
    "read_frame": "a video frame as an <img>",
    "read_thumbnail": "a video's thumbnail as an <img>",
    "download": "a ready dataset's zip, downloaded by the browser",
    "upload_video": "data-api of the upload form: static/js/upload.js posts there with a progress bar",
}
API_PREFIXES = ("/api/", "/auth/")


def _templates():
    return sorted((ROOT / "templates").rglob("*.html"))


def test_no_hard_coded_internal_paths():
    found = []
    for template in _templates():
        text = re.sub(r"\{#.*?#\}", "", template.read_text(), flags=re.S)  # comments may name paths
        for number, line in enumerate(text.splitlines(), 1):
            for match in HARD_CODED.finditer(line):
                literal = line[match.start():].split(match["q"], 2)[1]
                key = f"{template.relative_to(ROOT / 'templates')}: {literal}"
                if key not in ALLOWED_PATHS:
                    found.append(f"{template.relative_to(ROOT)}:{number}: {literal}")
    assert found == [], "use url_for('<route name>', ...) instead of these paths:\n" + "\n".join(found)


def test_the_path_check_finds_hard_coded_paths():
    for bad in ['<a href="/videos">', '<form action="/datasets/{{ d.id }}/cancel">', '<a href="/">',
                "{{ '/datasets/%s' % d.id }}", '<img src="/api/v1/videos/{{ v.id }}/thumbnail">']:
        assert HARD_CODED.search(bad), bad
    for fine in ['<a href="{{ url_for(\'home\') }}">', '<line x1="0"/>', '<a href="https://cvat.example/x">',
                 '<script src="//cdn.example/x.js">']:
        assert not HARD_CODED.search(fine), fine


def test_template_links_resolve_to_page_routes():
    from src.main import create_app

    app = create_app()
    seen = 0
    for template in _templates():
        for call in CALL.finditer(template.read_text()):
            name = call["name"]
            if name == "static":
                continue
            params = {key: "1" for key in re.findall(r"(\w+)=", call["args"])}
            path = app.url_path_for(name, **params)
            if name not in API_RESOURCES:
                assert not path.startswith(API_PREFIXES), f"{template.name}: url_for('{name}') resolves to the API route {path}"
            seen += 1
    assert seen >= 100


def test_template_url_for_gives_a_path():
    """The links read as paths (`href="/videos/…"`), not absolute URLs that a proxy or another
    host name would break."""
    from starlette.requests import Request

    from src.main import create_app
    from src.templating import templates

    app = create_app()
    request = Request({"type": "http", "app": app, "router": app.router, "scheme": "http", "server": ("forge", 80),
                       "path": "/", "root_path": "", "headers": [], "query_string": b""})
    html = templates.env.from_string("{{ url_for('video_page', video_id='v1') }} {{ url_for('static', path='a.css') }}")
    assert html.render(request=request) == "/videos/v1 /static/a.css"


def _route_decorators(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr in {"get", "post", "put", "patch", "delete", "head"}):
                    yield node.name, decorator


def test_page_routes_have_explicit_unique_names():
    """Every page route says its name, and no other route of the app has it: `url_for` finds the
    first route of a name, so a page named like an API endpoint (or another page) links there."""
    from src.main import create_app

    unnamed = [f"{path.relative_to(ROOT)}: {function}" for path in sorted((ROOT / "src").glob("*/pages.py"))
               for function, decorator in _route_decorators(path)
               if not any(keyword.arg == "name" for keyword in decorator.keywords)]
    assert unnamed == [], "page routes without name=...:\n" + "\n".join(unnamed)

    routes = [route for route in create_app().routes if isinstance(route, APIRoute)]
    names: dict[str, list[str]] = {}
    for route in routes:
        names.setdefault(route.name, []).append(f"{sorted(route.methods)} {route.path}")
    pages = {route.name for route in routes if not route.path.startswith(API_PREFIXES)}
    shared = {name: paths for name, paths in names.items() if len(paths) > 1 and (name in pages or name in API_RESOURCES)}
    assert shared == {}, f"route names used by more than one route: {shared}"


def test_pages_redirect_to_named_routes():
    """Page handlers redirect with `redirect_to(request, "<route name>", ...)`, not to a path they spell."""
    spelled = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
               for path in sorted((ROOT / "src").glob("*/pages.py"))
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"""redirect\(request, f?["']/""", line)]
    assert spelled == []


# A form's refusal shown by hand: `{% if x %}<p class="error" ...>{{ x }}</p>{% endif %}`.
HAND_MADE_ERROR = re.compile(r"""\{%\s*if\s+([\w.]*error)\s*%\}\s*<p class="error"[^>]*>\{\{\s*\1\s*\}\}</p>""")


def test_form_errors_are_shown_one_way():
    """Every form's refusal goes through `form_error` (src/templating.py): the same markup, and
    role=alert, so a screen reader says it when it appears (the draft page's three did not)."""
    found = [f"{t.relative_to(ROOT)}:{n}" for t in _templates()
             for n, line in enumerate(t.read_text().splitlines(), 1) if HAND_MADE_ERROR.search(line)]
    assert not found, f"use {{{{ form_error(message) }}}} instead: {found}"


def test_form_error_escapes_its_message_and_says_nothing_without_one():
    from src.templating import form_error

    assert form_error(None) == "" and form_error("") == ""
    assert str(form_error("<b>no</b> & more", "create-error")) == (
        '<p class="error" id="create-error" role="alert">&lt;b&gt;no&lt;/b&gt; &amp; more</p>')
