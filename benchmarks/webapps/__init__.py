"""Minimal FastAPI apps with the blog's five endpoints, one per client, for
the web load test (``benchmarks.web``).  The project's own example app
(``aiokafka_c.example.app``) is measured as it ships; these are the peers
(and a bare aiokafka_c app of the same shape, for a like-for-like view).

Every app reads ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC`` and
``KAFKA_CONFIG_<PROPERTY>`` (as the example app does) and serves:

- ``POST /items1`` awaited produce, answers timestamp/partition/offset;
- ``POST /items2`` out-of-band, delivery callback on the event loop;
- ``POST /items3`` out-of-band, delivery callback on a producer thread
  (only clients that have one);
- ``POST /items4`` fire-and-forget;
- ``POST /items5`` no-op.
"""
