"""Liveness, readiness and Prometheus metrics: open even when an API key is set."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.metrics import exposition
from app.schemas import HealthResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """Liveness: the process is up and its event loop answers."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_class=JSONResponse,
    responses={
        200: {"model": HealthResponse, "description": "ready"},
        503: {"model": HealthResponse, "description": "not ready, or draining"},
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 once the model is loaded and warmed up; 503 before that and while
    draining for shutdown."""
    state = request.app.state
    status = "draining" if state.draining else "ready" if state.ready else "not_ready"
    code = 200 if status == "ready" else 503
    headers = None if code == 200 else {"Retry-After": "1"}
    return JSONResponse({"status": status}, status_code=code, headers=headers)


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)


# HEAD as well as GET (load balancers and uptime checks probe with HEAD); kept out of the
# OpenAPI schema, where it would repeat the GET operations.
for path, endpoint in (
    ("/healthz", healthz),
    ("/readyz", readyz),
    ("/metrics", prometheus_metrics),
):
    router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)
