"""A FastAPI/uvicorn web app producing to Kafka with aiokafka_c.

The Confluent blog's five endpoints (awaited, two out-of-band flavours,
fire-and-forget, no-op), plus ``/stats``, ``/healthz`` and a live page at
``/``. Start it with ``python -m aiokafka_c.example`` (needs the package's
``example`` extra); with no ``KAFKA_BOOTSTRAP_SERVERS`` it produces to
librdkafka's in-process mock cluster.

The app object is ``aiokafka_c.example.app:app``; this package imports
nothing heavy so that ``--help`` stays fast.
"""
