"""Jinja2 + HTMX: render a whole page, or only one block of it for an HTMX request."""

from __future__ import annotations

from typing import Any

import jinja2
from fastapi import Request
from markupsafe import Markup
from fastapi.responses import RedirectResponse, Response
from jinja2_fragments.fastapi import Jinja2Blocks
from starlette.routing import BaseRoute, NoMatchFound

from src.config import ROOT
from src.datasets.wording import describe_dataset
from src.units import human_bytes, human_date, human_datetime, human_duration, money

templates = Jinja2Blocks(directory=ROOT / "templates")
# The filters every template may use, registered here once (src/units.py): `{{ n | bytes }}`
# (decimal units), `{{ s | duration }}`, `{{ cents | money(currency) }}`, `{{ at | date }}`,
# `{{ at | datetime }}` (`datetime(seconds=True)`); None gives "" (`{{ at | date or "never" }}`).
templates.env.filters.update(bytes=human_bytes, duration=human_duration, money=money, date=human_date,
                             datetime=human_datetime)
# `dataset_status(dataset)`: the dataset's state in words (src/datasets/wording.py).
templates.env.globals.update(dataset_status=describe_dataset)


def form_error(message: str | None, id: str | None = None) -> Markup:
    """A form's refusal, said where the form is: ``{{ form_error(upload_error, "upload-error") }}``
    -> ``<p class="error" id="upload-error" role="alert">...</p>`` (role=alert: read out when it
    appears), nothing when there is no message. The one way pages show a form's error."""
    if not message:
        return Markup("")
    ident = Markup(' id="{}"').format(id) if id else Markup("")
    return Markup('<p class="error"{} role="alert">{}</p>').format(ident, message)


templates.env.globals["form_error"] = form_error


@jinja2.pass_context
def url_for(context: dict[str, Any], name: str, /, **path_params: Any) -> str:
    """`{{ url_for('video_page', video_id=v.id) }}`: the path of a named route (with the app's
    root path), not Starlette's absolute URL, so a page behind a proxy or on another host name
    links to itself, and the HTML reads as the hard-coded paths once did (`href="/videos/…"`).
    Page routes carry unique explicit names (tests/test_templates.py)."""
    return path_for(context["request"], name, **path_params)


def path_for(request: Request, name: str, /, **path_params: Any) -> str:
    """The path of the named route, as the templates' `url_for` gives it."""
    return request.scope.get("root_path", "").rstrip("/") + _route_for(request.app, name, path_params).url_path_for(
        name, **path_params)


def _route_for(app: Any, name: str, path_params: dict[str, Any]) -> BaseRoute:
    """The route Starlette's `url_path_for` would pick (the first that builds this name with
    these parameters), remembered per app: Starlette tries every route in turn, and with some
    200 routes and a dozen links a page that scan was most of a page's CPU."""
    routes: dict[tuple[str, tuple[str, ...]], BaseRoute] = app.__dict__.setdefault("_url_for_routes", {})
    key = (name, tuple(sorted(path_params)))
    route = routes.get(key)
    if route is None:
        for candidate in app.router.routes:
            try:
                candidate.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
            route = routes[key] = candidate
            break
        else:
            raise NoMatchFound(name, path_params)
    return route


templates.env.globals["url_for"] = url_for


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> Response:
    """The page `name`; just its `block` when HTMX asked for a fragment."""
    ctx = {
        "user": getattr(request.state, "user", None),
        "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
        **(context or {}),
    }
    if block and is_htmx(request):
        return templates.TemplateResponse(request, name, ctx, block_name=block, status_code=status_code)
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def redirect(request: Request, url: str) -> Response:
    """See Other for plain forms; HX-Redirect for HTMX (which would otherwise swap the page in)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def redirect_to(request: Request, name: str, /, **path_params: Any) -> Response:
    """`redirect` to a named route: `redirect_to(request, "video_page", video_id=video.id)`."""
    return redirect(request, path_for(request, name, **path_params))
