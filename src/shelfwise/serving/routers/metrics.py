"""Prometheus metrics for scraping (see deploy/prometheus-alerts.yml for the alert rules)."""

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Latency histograms and request/error counts per endpoint, the model version served,
    index sizes and event lag, in the Prometheus text format."""
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
