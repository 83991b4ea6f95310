"""Prometheus metrics of one app. Each app has its own registry, so several apps (tests, or a
process serving two shops) never share or double-register series."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 60.0, 300.0, 3600.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # Routes are the path templates (/recommendations/{user_id}), never raw paths: bounded labels.
        self.latency = Histogram("shelfwise_http_request_duration_seconds", "Request latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter("shelfwise_http_requests_total", "Requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.errors = Counter("shelfwise_http_errors_total", "Responses with a 5xx status", ["method", "route"], registry=r)
        self.rate_limited = Counter("shelfwise_rate_limited_total", "Requests refused by the rate limiter", registry=r)
        self.model_info = Gauge("shelfwise_model_info", "The model being served (value 1)", ["name", "version", "source"], registry=r)
        self.model_loaded = Gauge("shelfwise_model_loaded_timestamp_seconds", "When the served model was loaded", registry=r)
        self.model_created = Gauge("shelfwise_model_created_timestamp_seconds",
                                   "When the served model was trained (artifact time, or fit time)", registry=r)
        self.model_switches = Counter("shelfwise_model_switches_total", "Model switches (reload, rollback)", ["action"], registry=r)
        self.index_size = Gauge("shelfwise_index_size", "Entries in each in-memory index", ["index"], registry=r)
        self.events_received = Counter("shelfwise_events_received_total", "Events received by POST /events", registry=r)
        self.events_stored = Counter("shelfwise_events_stored_total", "Events committed to the store", registry=r)
        self.events_rejected = Counter("shelfwise_events_rejected_total", "Events in rejected batches", registry=r)
        self.event_write = Histogram("shelfwise_event_write_seconds",
                                     "From receiving an event batch to its commit: the time until it shapes recommendations",
                                     buckets=LAG_BUCKETS, registry=r)
        self.event_lag = Histogram("shelfwise_event_lag_seconds",
                                   "Age of the newest event of a batch when it is committed (event ts to store)",
                                   buckets=LAG_BUCKETS, registry=r)

    def set_model(self, name: str, version: str, source: str, loaded_at: float, created_at: float) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, source).set(1)
        self.model_loaded.set(loaded_at)
        self.model_created.set(created_at)

    def render(self) -> bytes:
        return generate_latest(self.registry)
