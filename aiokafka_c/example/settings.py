"""The example app's configuration, read from the environment.

``KAFKA_BOOTSTRAP_SERVERS``
    The cluster to produce to. Unset or empty: librdkafka's in-process mock
    cluster (one broker), so the app runs with nothing else installed.
``KAFKA_TOPIC``
    The topic every endpoint produces to (default ``items``).
``KAFKA_CONFIG_<PROPERTY>``
    Any librdkafka property: the rest of the name, lower-cased, with ``_``
    turned into ``.`` (``__`` gives a literal ``_``). For example
    ``KAFKA_CONFIG_MESSAGE_TIMEOUT_MS=5000`` sets ``message.timeout.ms``.
    These win over the app's defaults below.
``APP_FLUSH_TIMEOUT_S``
    How long shutdown waits for queued messages to be delivered (default
    10 seconds); what is left after that fails and is logged.
``APP_FEED_ENABLED``
    ``1`` (the default) runs the live feed: a consumer of the topic whose
    items ``/ws/items`` streams to the page. ``0`` leaves it out: no
    consumer, and ``/ws/items`` refuses connections.
``APP_FEED_QUEUE_SIZE``
    How many items may wait to be sent to one viewer of the feed (default
    100); a viewer that falls further behind is dropped.

``KAFKA_CONFIG_*`` properties reach the feed's consumer too (librdkafka
logs a warning for a producer-only one and ignores it there).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
TOPIC_ENV = "KAFKA_TOPIC"
CONFIG_ENV_PREFIX = "KAFKA_CONFIG_"
FLUSH_TIMEOUT_ENV = "APP_FLUSH_TIMEOUT_S"
FEED_ENABLED_ENV = "APP_FEED_ENABLED"
FEED_QUEUE_SIZE_ENV = "APP_FEED_QUEUE_SIZE"

DEFAULT_TOPIC = "items"
DEFAULT_FLUSH_TIMEOUT_S = 10.0
DEFAULT_FEED_QUEUE_SIZE = 100

# librdkafka settings the app chooses; KAFKA_CONFIG_* overrides each one.
# - statistics every second feed /stats and /healthz;
# - a web request should not hang for librdkafka's default five minutes
#   when the cluster is away, so a message is given 30 s to be delivered.
APP_DEFAULTS: Mapping[str, str] = {
    "client.id": "aiokafka_c-example",
    "statistics.interval.ms": "1000",
    "message.timeout.ms": "30000",
}

# The embedded default: librdkafka starts a mock cluster inside the
# producer and points bootstrap.servers at it.
MOCK_CLUSTER: Mapping[str, str] = {"test.mock.num.brokers": "1"}

# The feed's consumer: it assigns itself partitions and never commits, so
# the group id (needed for assign()) is one no other consumer has.
FEED_DEFAULTS: Mapping[str, str] = {
    "client.id": "aiokafka_c-example-feed",
    "enable.auto.commit": "false",
    "enable.auto.offset.store": "false",
    "enable.partition.eof": "false",
    "auto.offset.reset": "latest",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable has a value the app cannot use."""


def property_name(env_suffix: str) -> str:
    """``MESSAGE_TIMEOUT_MS`` -> ``message.timeout.ms``; ``A__B`` -> ``a_b``."""
    parts = env_suffix.lower().split("__")
    return "_".join(part.replace("_", ".") for part in parts)


@dataclass(frozen=True)
class Settings:
    """What the app needs to know to start its producer."""

    bootstrap_servers: str | None = None
    topic: str = DEFAULT_TOPIC
    overrides: Mapping[str, str] = field(default_factory=dict)
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT_S
    feed_enabled: bool = True
    feed_queue_size: int = DEFAULT_FEED_QUEUE_SIZE

    @property
    def embedded(self) -> bool:
        """True when producing to librdkafka's in-process mock cluster."""
        return not self.bootstrap_servers

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        bootstrap = env.get(BOOTSTRAP_ENV, "").strip() or None
        topic = env.get(TOPIC_ENV, "").strip() or DEFAULT_TOPIC
        overrides: dict[str, str] = {}
        for key, value in env.items():
            if key.startswith(CONFIG_ENV_PREFIX) and key != CONFIG_ENV_PREFIX:
                overrides[property_name(key[len(CONFIG_ENV_PREFIX) :])] = value
        if bootstrap is None:
            # KAFKA_CONFIG_BOOTSTRAP_SERVERS names a cluster just as well.
            bootstrap = overrides.pop("bootstrap.servers", "").strip() or None
        raw_timeout = env.get(FLUSH_TIMEOUT_ENV, "").strip()
        flush_timeout = DEFAULT_FLUSH_TIMEOUT_S
        if raw_timeout:
            try:
                flush_timeout = float(raw_timeout)
            except ValueError:
                flush_timeout = math.nan
            if not (flush_timeout >= 0 and math.isfinite(flush_timeout)):
                raise SettingsError(
                    f"{FLUSH_TIMEOUT_ENV}={raw_timeout!r}: expected a "
                    "number of seconds >= 0"
                )
        return cls(
            bootstrap,
            topic,
            overrides,
            flush_timeout,
            _feed_enabled(env),
            _feed_queue_size(env),
        )

    def producer_config(self) -> dict[str, str]:
        """librdkafka properties for the producer (no callbacks)."""
        config = dict(APP_DEFAULTS)
        if self.bootstrap_servers:
            config["bootstrap.servers"] = self.bootstrap_servers
        else:
            config.update(MOCK_CLUSTER)
        config.update(self.overrides)
        return config

    def feed_config(self) -> dict[str, str]:
        """librdkafka properties for the feed's consumer, but for
        ``bootstrap.servers`` (the embedded cluster's address is known only
        once the producer runs it)."""
        config = dict(FEED_DEFAULTS)
        config["group.id"] = f"aiokafka-c-example-feed-{uuid.uuid4().hex}"
        if self.embedded:
            # The mock cluster makes the topic when the feed asks for it,
            # as it would for the producer's first message.
            config["allow.auto.create.topics"] = "true"
        for key, value in self.overrides.items():
            # The embedded cluster is the producer's; the feed joins it.
            if key != "bootstrap.servers" and not key.startswith("test.mock."):
                config[key] = value
        return config

    def stats_interval_s(self) -> float:
        """The statistics interval in effect, in seconds (0: disabled)."""
        raw = self.producer_config().get("statistics.interval.ms", "0")
        try:
            return max(0.0, float(raw) / 1000.0)
        except ValueError:
            return 0.0

    def describe(self) -> str:
        """One line for the startup log: where messages go."""
        if self.embedded:
            return (
                f"producing to topic {self.topic!r} on the embedded "
                "librdkafka mock cluster (test.mock.num.brokers="
                f"{self.producer_config().get('test.mock.num.brokers')}); "
                f"set {BOOTSTRAP_ENV} to use a real Kafka cluster"
            )
        return (
            f"producing to topic {self.topic!r} on the Kafka cluster at "
            f"{self.bootstrap_servers}"
        )


def _feed_enabled(env: Mapping[str, str]) -> bool:
    raw = env.get(FEED_ENABLED_ENV, "").strip()
    if not raw or raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{FEED_ENABLED_ENV}={raw!r}: expected 1 or 0")


def _feed_queue_size(env: Mapping[str, str]) -> int:
    raw = env.get(FEED_QUEUE_SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_FEED_QUEUE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise SettingsError(
            f"{FEED_QUEUE_SIZE_ENV}={raw!r}: expected a whole number >= 1"
        )
    return size
