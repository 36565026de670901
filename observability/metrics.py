"""``/metrics``: Prometheus's text format, for operators who already run Prometheus and Grafana.

The fleet's figures (queue, runs, agents, executors, the reconciler) are read from the database when
Prometheus scrapes, by a collector, so every web process answers the same fleet figures (scrape one, or
take ``max`` over them); the process's own (streams open, the live hub) are its own. Access: a bearer
token (``METRICS_TOKEN``), an address allow-list (``METRICS_ALLOW_IPS``), or both (then both must pass);
with neither, and for every refusal, ``/metrics`` is a 404 like any unknown path.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Iterator
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from core.throttling import client_address
from observability import selectors
from runs import live
from runs.sse import stream_slots

logger = structlog.get_logger(__name__)
PREFIX = "controlplane"


class FleetCollector(Collector):
    """Figures of the whole fleet, read from the database at each scrape (seven queries)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        since = now - timedelta(seconds=settings.METRICS_WINDOW_S)
        try:
            families = [*self._queue(now), *self._runs(since), *self._agents(), *self._reconciler()]
            families.append(self._executor_errors(since))
        except DatabaseError as exc:
            logger.warning("metrics_database_error", error=str(exc)[:300])
            yield GaugeMetricFamily(f"{PREFIX}_database_up", "Whether the last scrape read the database.", 0)
            return
        yield GaugeMetricFamily(f"{PREFIX}_database_up", "Whether the last scrape read the database.", 1)
        yield GaugeMetricFamily(
            f"{PREFIX}_metrics_window_seconds",
            "The window of the *_recent figures and of the duration histogram (METRICS_WINDOW_S).",
            settings.METRICS_WINDOW_S,
        )
        yield from families

    def _queue(self, now: datetime) -> list[Metric]:
        queue = selectors.queue_figures()
        entries = GaugeMetricFamily(
            f"{PREFIX}_queue_entries",
            "Queue entries by state (ready: claimable now; delayed: waiting out a retry's backoff).",
            labels=["state"],
        )
        for state in ("ready", "delayed", "leased", "parked", "dead"):
            entries.add_metric([state], queue[state])
        oldest = queue["oldest_ready_at"]
        return [
            GaugeMetricFamily(
                f"{PREFIX}_queue_depth",
                "Queue entries not finished (ready, delayed, leased, parked).",
                queue["depth"],
            ),
            entries,
            GaugeMetricFamily(
                f"{PREFIX}_queue_leases_expired",
                "Leased entries past their lease: a worker died and no other has claimed them yet.",
                queue["expired"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_queue_oldest_ready_age_seconds",
                "How long the oldest claimable entry has waited (0 when none waits).",
                max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
            ),
        ]

    def _runs(self, since: datetime) -> list[Metric]:
        figures = selectors.run_figures(since)
        families = []
        for name, values, documentation in (
            ("runs_active", figures.active, "Runs queued, running or waiting on a person, by status."),
            ("runs_started_recent", figures.started, "Runs started in the window, by current status."),
            ("runs_finished_recent", figures.finished, "Runs finished in the window, by status."),
        ):
            family = GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=["status"])
            for status, count in values.items():
                family.add_metric([status], count)
            families.append(family)
        errors = GaugeMetricFamily(
            f"{PREFIX}_run_errors_recent",
            "Runs that ended with an error in the window, by error class.",
            labels=["error_class"],
        )
        for error_class, count in sorted(selectors.run_errors_since(since).items()):
            errors.add_metric([error_class], count)
        bounds = [*(floatToGoString(b) for b in selectors.DURATION_BUCKETS), "+Inf"]
        durations = GaugeHistogramMetricFamily(
            f"{PREFIX}_run_duration_seconds",
            "Durations (started to finished) of the runs finished in the window.",
            buckets=list(zip(bounds, figures.durations, strict=True)),
            gsum_value=figures.duration_sum_s,
        )
        return [*families, errors, durations]

    def _agents(self) -> list[Metric]:
        agents = GaugeMetricFamily(f"{PREFIX}_agents", "Agents by state.", labels=["state"])
        for state, count in selectors.agents_by_state().items():
            agents.add_metric([state], count)
        executors = selectors.executors_with_health()
        up = GaugeMetricFamily(
            f"{PREFIX}_executor_up",
            "Whether each enabled executor answered the agent-status monitor's last poll.",
            labels=["executor"],
        )
        for executor in executors:
            if executor.enabled:
                up.add_metric([executor.name], int(selectors.executor_is_up(executor)))
        total = sum(selectors.executor_is_up(executor) for executor in executors)
        return [agents, up, GaugeMetricFamily(f"{PREFIX}_executors_up", "Enabled executors up.", total)]

    def _reconciler(self) -> list[Metric]:
        heartbeat = selectors.last_heartbeat()
        return [
            GaugeMetricFamily(
                f"{PREFIX}_reconciler_last_pass_timestamp_seconds",
                "When a reconciler last finished a pass (Unix time; 0: never).",
                heartbeat.last_pass_at.timestamp() if heartbeat else 0.0,
            )
        ]

    def _executor_errors(self, since: datetime) -> Metric:
        family = GaugeMetricFamily(
            f"{PREFIX}_executor_call_errors_recent",
            "Executor calls that failed in the window, by operation and error class (from the traces).",
            labels=["operation", "error_class"],
        )
        for (operation, error_class), count in sorted(selectors.executor_call_errors_since(since).items()):
            family.add_metric([operation, error_class], count)
        return family


class WebProcessCollector(Collector):
    """This web process's own figures: its open event streams."""

    def collect(self) -> Iterator[Metric]:
        hub = live.hub()
        yield GaugeMetricFamily(
            f"{PREFIX}_web_streams_open",
            "Event streams (SSE) open in this process.",
            sum(stream_slots.open.copy().values()),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_web_live_listeners",
            "Streams this process's live hub delivers events to.",
            sum(len(group) for group in list(hub.listeners.values())),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_web_live_subscribed",
            "Whether this process's subscription to the event bus (Redis) is up (1 without Redis).",
            int(hub.subscribed() or not live.redis_kwargs()),
        )


registry = CollectorRegistry()
registry.register(FleetCollector())
registry.register(WebProcessCollector())
ProcessCollector(registry=registry)
PlatformCollector(registry=registry)


def refusal(request: HttpRequest) -> str | None:
    """Why ``request`` may not read the metrics, or None when it may."""
    token, allowed = settings.METRICS_TOKEN, settings.METRICS_ALLOW_IPS
    if not token and not allowed:
        return "not_configured"
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            return "token"
    if allowed and not _address_allowed(client_address(request), allowed):
        return "address"
    return None


def _address_allowed(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(networks)))


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    reason = refusal(request)
    if reason is not None:
        if reason != "not_configured":
            logger.warning("metrics_refused", reason=reason, client=client_address(request))
        raise Http404
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)
