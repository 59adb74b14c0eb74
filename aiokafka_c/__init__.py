"""aiokafka_c: an asyncio Kafka client for CPython, a C extension over
librdkafka.

    async with AIOProducer({"bootstrap.servers": "127.0.0.1:9092"}) as p:
        msg = await p.produce("items", b"value")
"""

from ._core import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    OFFSET_INVALID,
    AIOConsumer,
    AIOProducer,
    BrokerMetadata,
    ClusterMetadata,
    ConsumerGroupMetadata,
    KafkaError,
    KafkaException,
    Message,
    PartitionMetadata,
    ThrottleEvent,
    TopicMetadata,
    TopicPartition,
    librdkafka_version,
)

__all__ = [
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_STORED",
    "OFFSET_INVALID",
    "AIOConsumer",
    "AIOProducer",
    "BrokerMetadata",
    "ClusterMetadata",
    "ConsumerGroupMetadata",
    "KafkaError",
    "KafkaException",
    "Message",
    "PartitionMetadata",
    "ThrottleEvent",
    "TopicMetadata",
    "TopicPartition",
    "librdkafka_version",
]
__version__ = "0.1.0"
