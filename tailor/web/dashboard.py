"""The marketing dashboard in the assist panel: the page ``/agent/dashboard`` and its data,
``GET /api/admin/dashboard`` — for agents with the ``admin`` role only.

The API answers 401 without a session and 403 for an agent without the admin role (the
panel's sign-in, :class:`tailor.web.security.PanelAuth`); it only reads, so it needs no CSRF
header, and like every ``/api/*`` route it is rate limited per IP. The page itself redirects
a visitor without a session to the panel's sign-in and answers 403 to non-admins. The
numbers come from :mod:`tailor.analytics.dashboard`; docs/dashboard.md explains them.
"""

# No ``from __future__ import annotations``: FastAPI resolves the routes' annotations, which
# name the closure-local ``admin`` dependency.
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from tailor.analytics.dashboard import MAX_QUERIES, build_dashboard, time_range
from tailor.config import Settings
from tailor.web.security import AgentUser, PanelAuth

__all__ = ["dashboard_router"]

_FORBIDDEN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Tailor — dashboard</title><link rel="stylesheet" href="/static/agent/agent.css"></head>
<body><main class="center"><h1>The dashboard is for admins</h1>
<p>Your account has the agent role. <a href="/agent">Back to the assist panel</a></p>
</main></body></html>"""


def dashboard_router(
    settings: Settings,
    factory: Callable[[], sessionmaker[Session]],
    auth: PanelAuth,
    static_dir: Any,
) -> APIRouter:
    """Routes of the dashboard page and its API; ``static_dir`` holds ``agent/dashboard.html``."""
    admin = auth.require("admin")
    window = timedelta(hours=settings.experiment_attribution_hours)
    router = APIRouter()

    @router.get("/agent/dashboard", include_in_schema=False, response_model=None)
    def page(request: Request) -> Response:
        try:
            admin(request)
        except HTTPException as exc:
            if exc.status_code == 401:
                return RedirectResponse("/agent", status_code=303)
            return HTMLResponse(_FORBIDDEN_PAGE, status_code=exc.status_code)
        return FileResponse(static_dir / "agent" / "dashboard.html")

    @router.get("/api/admin/dashboard")
    def dashboard(
        _user: Annotated[AgentUser, Depends(admin)],
        since: Annotated[datetime | None, Query(description="ISO; default 30 days ago")] = None,
        until: Annotated[datetime | None, Query(description="ISO time; default now")] = None,
        bucket: Literal["day", "week"] | None = Query(None, description="default: by range"),
        segment_kind: str | None = Query(None, max_length=32, description="e.g. rfm"),
        experiment: str | None = Query(None, max_length=128),
        queries: int = Query(20, ge=1, le=MAX_QUERIES),
    ) -> dict[str, Any]:
        """Engagement by segment and by experiment arm, sentiment, queries with no good
        results and trigger performance for ``[since, until)`` (UTC)."""
        try:
            r = time_range(since, until, bucket)
            with factory()() as session:
                data = build_dashboard(
                    session,
                    r,
                    window,
                    settings.dashboard_low_relevance,
                    segment_kind=segment_kind,
                    experiment=experiment,
                    queries=queries,
                )
        except ValueError as exc:  # a bad range or an unknown name: the message says which
            raise HTTPException(422, str(exc)) from exc
        return data.to_json()

    return router
