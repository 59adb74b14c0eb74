"""Type stubs for the aiokafka_c._core C extension (kept in step with src/,
checked by stubtest in tests/test_typing.py)."""

import asyncio
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Literal, TypeAlias, TypeVar, final

_T = TypeVar("_T")

from _typeshed import structseq

from .admin import (
    AclBinding,
    AclBindingFilter,
    ConfigEntry,
    ConfigResource,
    ConsumerGroupDescription,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    DeletedRecords,
    ListConsumerGroupsResult,
    NewPartitions,
    NewTopic,
)
from typing_extensions import Self, disjoint_base

TIMESTAMP_NOT_AVAILABLE: Final[int]
TIMESTAMP_CREATE_TIME: Final[int]
TIMESTAMP_LOG_APPEND_TIME: Final[int]
LIBRDKAFKA_MIN_VERSION: Final[str]
OFFSET_BEGINNING: Final[int]
OFFSET_END: Final[int]
OFFSET_STORED: Final[int]
OFFSET_INVALID: Final[int]

_Payload: TypeAlias = bytes | bytearray | memoryview | str | None
_HeaderValue: TypeAlias = bytes | bytearray | memoryview | str | None
_Headers: TypeAlias = (
    Sequence[tuple[str, _HeaderValue]] | Mapping[str, _HeaderValue] | None
)
_BatchItem: TypeAlias = (
    _Payload
    | tuple[_Payload, _Payload]
    | tuple[_Payload, _Payload, _Headers]
    | tuple[_Payload, _Payload, _Headers, int | None]
)
_DeliveryCallback: TypeAlias = Callable[
    [KafkaError | None, Message], Awaitable[None] | None
]

def librdkafka_version() -> tuple[str, int]: ...
def _atexit() -> int: ...
def _after_fork() -> None: ...

# A build with -DAKC_LATENCY_PROBE (benchmarks/latency_probe.py, never a
# release) also has _latency_probe() -> tuple[int, int, int, int].

# Tests only (src/selftest.c).
def _tplist_roundtrip(
    partitions: Iterable[TopicPartition], /
) -> list[TopicPartition]: ...
def _tp_with_error(
    topic: str, partition: int, offset: int, err: int, /
) -> TopicPartition: ...
def _mock_metadata(
    nbrokers: int, topic: str, partitions: int, topic_error: int = 0, /
) -> ClusterMetadata: ...
def _cgm_new(group_id: str, /) -> ConsumerGroupMetadata: ...
def _cgm_check(obj: object, /) -> bool: ...

@final
class KafkaError:
    # Every librdkafka error code (generated from librdkafka's table).
    _BEGIN: ClassVar[int]
    _BAD_MSG: ClassVar[int]
    _BAD_COMPRESSION: ClassVar[int]
    _DESTROY: ClassVar[int]
    _FAIL: ClassVar[int]
    _TRANSPORT: ClassVar[int]
    _CRIT_SYS_RESOURCE: ClassVar[int]
    _RESOLVE: ClassVar[int]
    _MSG_TIMED_OUT: ClassVar[int]
    _PARTITION_EOF: ClassVar[int]
    _UNKNOWN_PARTITION: ClassVar[int]
    _FS: ClassVar[int]
    _UNKNOWN_TOPIC: ClassVar[int]
    _ALL_BROKERS_DOWN: ClassVar[int]
    _INVALID_ARG: ClassVar[int]
    _TIMED_OUT: ClassVar[int]
    _QUEUE_FULL: ClassVar[int]
    _ISR_INSUFF: ClassVar[int]
    _NODE_UPDATE: ClassVar[int]
    _SSL: ClassVar[int]
    _WAIT_COORD: ClassVar[int]
    _UNKNOWN_GROUP: ClassVar[int]
    _IN_PROGRESS: ClassVar[int]
    _PREV_IN_PROGRESS: ClassVar[int]
    _EXISTING_SUBSCRIPTION: ClassVar[int]
    _ASSIGN_PARTITIONS: ClassVar[int]
    _REVOKE_PARTITIONS: ClassVar[int]
    _CONFLICT: ClassVar[int]
    _STATE: ClassVar[int]
    _UNKNOWN_PROTOCOL: ClassVar[int]
    _NOT_IMPLEMENTED: ClassVar[int]
    _AUTHENTICATION: ClassVar[int]
    _NO_OFFSET: ClassVar[int]
    _OUTDATED: ClassVar[int]
    _TIMED_OUT_QUEUE: ClassVar[int]
    _UNSUPPORTED_FEATURE: ClassVar[int]
    _WAIT_CACHE: ClassVar[int]
    _INTR: ClassVar[int]
    _KEY_SERIALIZATION: ClassVar[int]
    _VALUE_SERIALIZATION: ClassVar[int]
    _KEY_DESERIALIZATION: ClassVar[int]
    _VALUE_DESERIALIZATION: ClassVar[int]
    _PARTIAL: ClassVar[int]
    _READ_ONLY: ClassVar[int]
    _NOENT: ClassVar[int]
    _UNDERFLOW: ClassVar[int]
    _INVALID_TYPE: ClassVar[int]
    _RETRY: ClassVar[int]
    _PURGE_QUEUE: ClassVar[int]
    _PURGE_INFLIGHT: ClassVar[int]
    _FATAL: ClassVar[int]
    _INCONSISTENT: ClassVar[int]
    _GAPLESS_GUARANTEE: ClassVar[int]
    _MAX_POLL_EXCEEDED: ClassVar[int]
    _UNKNOWN_BROKER: ClassVar[int]
    _NOT_CONFIGURED: ClassVar[int]
    _FENCED: ClassVar[int]
    _APPLICATION: ClassVar[int]
    _ASSIGNMENT_LOST: ClassVar[int]
    _NOOP: ClassVar[int]
    _AUTO_OFFSET_RESET: ClassVar[int]
    _END: ClassVar[int]
    UNKNOWN: ClassVar[int]
    NO_ERROR: ClassVar[int]
    OFFSET_OUT_OF_RANGE: ClassVar[int]
    INVALID_MSG: ClassVar[int]
    UNKNOWN_TOPIC_OR_PART: ClassVar[int]
    INVALID_MSG_SIZE: ClassVar[int]
    LEADER_NOT_AVAILABLE: ClassVar[int]
    NOT_LEADER_FOR_PARTITION: ClassVar[int]
    REQUEST_TIMED_OUT: ClassVar[int]
    BROKER_NOT_AVAILABLE: ClassVar[int]
    REPLICA_NOT_AVAILABLE: ClassVar[int]
    MSG_SIZE_TOO_LARGE: ClassVar[int]
    STALE_CTRL_EPOCH: ClassVar[int]
    OFFSET_METADATA_TOO_LARGE: ClassVar[int]
    NETWORK_EXCEPTION: ClassVar[int]
    COORDINATOR_LOAD_IN_PROGRESS: ClassVar[int]
    COORDINATOR_NOT_AVAILABLE: ClassVar[int]
    NOT_COORDINATOR: ClassVar[int]
    TOPIC_EXCEPTION: ClassVar[int]
    RECORD_LIST_TOO_LARGE: ClassVar[int]
    NOT_ENOUGH_REPLICAS: ClassVar[int]
    NOT_ENOUGH_REPLICAS_AFTER_APPEND: ClassVar[int]
    INVALID_REQUIRED_ACKS: ClassVar[int]
    ILLEGAL_GENERATION: ClassVar[int]
    INCONSISTENT_GROUP_PROTOCOL: ClassVar[int]
    INVALID_GROUP_ID: ClassVar[int]
    UNKNOWN_MEMBER_ID: ClassVar[int]
    INVALID_SESSION_TIMEOUT: ClassVar[int]
    REBALANCE_IN_PROGRESS: ClassVar[int]
    INVALID_COMMIT_OFFSET_SIZE: ClassVar[int]
    TOPIC_AUTHORIZATION_FAILED: ClassVar[int]
    GROUP_AUTHORIZATION_FAILED: ClassVar[int]
    CLUSTER_AUTHORIZATION_FAILED: ClassVar[int]
    INVALID_TIMESTAMP: ClassVar[int]
    UNSUPPORTED_SASL_MECHANISM: ClassVar[int]
    ILLEGAL_SASL_STATE: ClassVar[int]
    UNSUPPORTED_VERSION: ClassVar[int]
    TOPIC_ALREADY_EXISTS: ClassVar[int]
    INVALID_PARTITIONS: ClassVar[int]
    INVALID_REPLICATION_FACTOR: ClassVar[int]
    INVALID_REPLICA_ASSIGNMENT: ClassVar[int]
    INVALID_CONFIG: ClassVar[int]
    NOT_CONTROLLER: ClassVar[int]
    INVALID_REQUEST: ClassVar[int]
    UNSUPPORTED_FOR_MESSAGE_FORMAT: ClassVar[int]
    POLICY_VIOLATION: ClassVar[int]
    OUT_OF_ORDER_SEQUENCE_NUMBER: ClassVar[int]
    DUPLICATE_SEQUENCE_NUMBER: ClassVar[int]
    INVALID_PRODUCER_EPOCH: ClassVar[int]
    INVALID_TXN_STATE: ClassVar[int]
    INVALID_PRODUCER_ID_MAPPING: ClassVar[int]
    INVALID_TRANSACTION_TIMEOUT: ClassVar[int]
    CONCURRENT_TRANSACTIONS: ClassVar[int]
    TRANSACTION_COORDINATOR_FENCED: ClassVar[int]
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ClassVar[int]
    SECURITY_DISABLED: ClassVar[int]
    OPERATION_NOT_ATTEMPTED: ClassVar[int]
    KAFKA_STORAGE_ERROR: ClassVar[int]
    LOG_DIR_NOT_FOUND: ClassVar[int]
    SASL_AUTHENTICATION_FAILED: ClassVar[int]
    UNKNOWN_PRODUCER_ID: ClassVar[int]
    REASSIGNMENT_IN_PROGRESS: ClassVar[int]
    DELEGATION_TOKEN_AUTH_DISABLED: ClassVar[int]
    DELEGATION_TOKEN_NOT_FOUND: ClassVar[int]
    DELEGATION_TOKEN_OWNER_MISMATCH: ClassVar[int]
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: ClassVar[int]
    DELEGATION_TOKEN_AUTHORIZATION_FAILED: ClassVar[int]
    DELEGATION_TOKEN_EXPIRED: ClassVar[int]
    INVALID_PRINCIPAL_TYPE: ClassVar[int]
    NON_EMPTY_GROUP: ClassVar[int]
    GROUP_ID_NOT_FOUND: ClassVar[int]
    FETCH_SESSION_ID_NOT_FOUND: ClassVar[int]
    INVALID_FETCH_SESSION_EPOCH: ClassVar[int]
    LISTENER_NOT_FOUND: ClassVar[int]
    TOPIC_DELETION_DISABLED: ClassVar[int]
    FENCED_LEADER_EPOCH: ClassVar[int]
    UNKNOWN_LEADER_EPOCH: ClassVar[int]
    UNSUPPORTED_COMPRESSION_TYPE: ClassVar[int]
    STALE_BROKER_EPOCH: ClassVar[int]
    OFFSET_NOT_AVAILABLE: ClassVar[int]
    MEMBER_ID_REQUIRED: ClassVar[int]
    PREFERRED_LEADER_NOT_AVAILABLE: ClassVar[int]
    GROUP_MAX_SIZE_REACHED: ClassVar[int]
    FENCED_INSTANCE_ID: ClassVar[int]
    ELIGIBLE_LEADERS_NOT_AVAILABLE: ClassVar[int]
    ELECTION_NOT_NEEDED: ClassVar[int]
    NO_REASSIGNMENT_IN_PROGRESS: ClassVar[int]
    GROUP_SUBSCRIBED_TO_TOPIC: ClassVar[int]
    INVALID_RECORD: ClassVar[int]
    UNSTABLE_OFFSET_COMMIT: ClassVar[int]
    THROTTLING_QUOTA_EXCEEDED: ClassVar[int]
    PRODUCER_FENCED: ClassVar[int]
    RESOURCE_NOT_FOUND: ClassVar[int]
    DUPLICATE_RESOURCE: ClassVar[int]
    UNACCEPTABLE_CREDENTIAL: ClassVar[int]
    INCONSISTENT_VOTER_SET: ClassVar[int]
    INVALID_UPDATE_VERSION: ClassVar[int]
    FEATURE_UPDATE_FAILED: ClassVar[int]
    PRINCIPAL_DESERIALIZATION_FAILURE: ClassVar[int]
    def __new__(
        cls,
        error: int,
        reason: str | None = None,
        fatal: bool = False,
        retriable: bool = False,
        txn_requires_abort: bool = False,
    ) -> Self: ...
    def code(self) -> int: ...
    def name(self) -> str: ...
    def str(self) -> str: ...
    def fatal(self) -> bool: ...
    def retriable(self) -> bool: ...
    def txn_requires_abort(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

class KafkaException(Exception):
    """args[0] is the KafkaError."""

@final
class Message:
    def topic(self) -> str | None: ...
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...
    def error(self) -> KafkaError | None: ...
    def latency(self) -> float | None: ...
    def __len__(self) -> int: ...

@final
class ThrottleEvent(structseq[Any], tuple[str, int, float]):
    __match_args__: Final = ("broker_name", "broker_id", "throttle_time")
    @property
    def broker_name(self) -> str: ...
    @property
    def broker_id(self) -> int: ...
    @property
    def throttle_time(self) -> float: ...

@disjoint_base
class TopicPartition:
    def __new__(
        cls,
        topic: str,
        partition: int = -1,
        offset: int = -1001,
        metadata: str | None = None,
    ) -> Self: ...
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    offset: int
    metadata: str | None
    @property
    def error(self) -> KafkaError | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: TopicPartition, /) -> bool: ...
    def __le__(self, other: TopicPartition, /) -> bool: ...
    def __gt__(self, other: TopicPartition, /) -> bool: ...
    def __ge__(self, other: TopicPartition, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class BrokerMetadata:
    @property
    def id(self) -> int: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int: ...

@final
class PartitionMetadata:
    @property
    def id(self) -> int: ...
    @property
    def leader(self) -> int: ...
    @property
    def replicas(self) -> list[int]: ...
    @property
    def isrs(self) -> list[int]: ...
    @property
    def error(self) -> KafkaError | None: ...

@final
class TopicMetadata:
    @property
    def topic(self) -> str: ...
    @property
    def partitions(self) -> dict[int, PartitionMetadata]: ...
    @property
    def error(self) -> KafkaError | None: ...

@final
class ClusterMetadata:
    @property
    def cluster_id(self) -> str | None: ...
    @property
    def controller_id(self) -> int: ...
    @property
    def brokers(self) -> dict[int, BrokerMetadata]: ...
    @property
    def topics(self) -> dict[str, TopicMetadata]: ...
    @property
    def orig_broker_id(self) -> int: ...
    @property
    def orig_broker_name(self) -> str | None: ...

@final
class ConsumerGroupMetadata: ...

@final
class _CloseWaiter:
    def __await__(self) -> Generator[Any, None, None]: ...

@disjoint_base
class AIOProducer:
    def __init__(
        self,
        config: Mapping[str, Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None: ...
    def produce(
        self,
        topic: str,
        value: _Payload = None,
        key: _Payload = None,
        *,
        partition: int = -1,
        timestamp: int = 0,
        headers: _Headers = None,
        on_delivery: _DeliveryCallback | None = None,
    ) -> asyncio.Future[Message]: ...
    def produce_batch(
        self,
        topic: str,
        messages: Iterable[_BatchItem],
        *,
        partition: int = -1,
    ) -> asyncio.Future[list[Message]]: ...
    def produce_nowait(
        self,
        topic: str,
        value: _Payload = None,
        key: _Payload = None,
        *,
        partition: int = -1,
        timestamp: int = 0,
        headers: _Headers = None,
        on_delivery: _DeliveryCallback | None = None,
        dispatch: Literal["loop", "poll_thread"] = "loop",
    ) -> None: ...
    def flush(self, timeout: float | None = None) -> asyncio.Future[int]: ...
    def purge(self) -> None: ...
    def close(self, timeout: float | None = None) -> Awaitable[None]: ...
    def init_transactions(
        self, timeout: float | None = None
    ) -> asyncio.Future[None]: ...
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(
        self,
        offsets: Iterable[TopicPartition],
        group_metadata: ConsumerGroupMetadata,
        timeout: float | None = None,
    ) -> asyncio.Future[None]: ...
    def commit_transaction(
        self, timeout: float | None = None
    ) -> asyncio.Future[None]: ...
    def abort_transaction(
        self, timeout: float | None = None
    ) -> asyncio.Future[None]: ...
    def transaction(self) -> _Transaction: ...
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def _mock_push_errors(
        self, errors: Sequence[int], api_key: int = 0
    ) -> None: ...
    def _mock_set_broker_up(self, broker_id: int, up: bool, /) -> None: ...
    def __aenter__(self) -> asyncio.Future[Self]: ...
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Awaitable[None]: ...

# Config callables accepted in AIOProducer's config dict.
_ErrorCallback: TypeAlias = Callable[[KafkaError], Awaitable[None] | None]
_StatsCallback: TypeAlias = Callable[[str], Awaitable[None] | None]
_ThrottleCallback: TypeAlias = Callable[[ThrottleEvent], Awaitable[None] | None]
_LoggerLike: TypeAlias = logging.Logger

_Partitions = Iterable[TopicPartition]
_RebalanceCallback = Callable[
    ["AIOConsumer", list[TopicPartition]], Awaitable[None] | None
]
_CommitCallback = Callable[
    [KafkaError | None, list[TopicPartition]], Awaitable[None] | None
]

@final
class _Transaction:
    def __aenter__(self) -> asyncio.Future[None]: ...
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> asyncio.Future[bool | None]: ...

@final
class _Ready(Generic[_T]):
    def __await__(self) -> Generator[Any, None, _T]: ...
    def __iter__(self) -> Generator[Any, None, _T]: ...
    def __next__(self) -> Any: ...

@disjoint_base
class AIOConsumer:
    def __init__(
        self,
        config: Mapping[str, Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None: ...
    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: _RebalanceCallback | None = None,
        on_revoke: _RebalanceCallback | None = None,
        on_lost: _RebalanceCallback | None = None,
    ) -> asyncio.Future[None]: ...
    def unsubscribe(self) -> asyncio.Future[None]: ...
    def assign(self, partitions: _Partitions, /) -> asyncio.Future[None]: ...
    def unassign(self) -> asyncio.Future[None]: ...
    def incremental_assign(
        self, partitions: _Partitions, /
    ) -> asyncio.Future[None]: ...
    def incremental_unassign(
        self, partitions: _Partitions, /
    ) -> asyncio.Future[None]: ...
    def assignment(self) -> list[TopicPartition]: ...
    def subscription(self) -> list[str]: ...
    def memberid(self) -> str | None: ...
    def poll(
        self, timeout: float | None = None
    ) -> Awaitable[Message | None]: ...
    def consume(
        self, num_messages: int = 1, timeout: float | None = None
    ) -> Awaitable[list[Message]]: ...
    def commit(
        self,
        message: Message | None = None,
        offsets: _Partitions | None = None,
    ) -> asyncio.Future[list[TopicPartition]]: ...
    def store_offsets(
        self,
        message: Message | None = None,
        offsets: _Partitions | None = None,
    ) -> None: ...
    def committed(
        self, partitions: _Partitions, timeout: float | None = None
    ) -> asyncio.Future[list[TopicPartition]]: ...
    def position(self, partitions: _Partitions, /) -> list[TopicPartition]: ...
    def seek(self, partition: TopicPartition, /) -> asyncio.Future[None]: ...
    def pause(self, partitions: _Partitions, /) -> asyncio.Future[None]: ...
    def resume(self, partitions: _Partitions, /) -> asyncio.Future[None]: ...
    def paused(self) -> list[TopicPartition]: ...
    def get_watermark_offsets(
        self,
        partition: TopicPartition,
        timeout: float | None = None,
        cached: bool = False,
    ) -> asyncio.Future[tuple[int, int]]: ...
    def offsets_for_times(
        self, partitions: _Partitions, timeout: float | None = None
    ) -> asyncio.Future[list[TopicPartition]]: ...
    def list_topics(
        self, topic: str | None = None, timeout: float | None = None
    ) -> asyncio.Future[ClusterMetadata]: ...
    def consumer_group_metadata(
        self,
    ) -> asyncio.Future[ConsumerGroupMetadata]: ...
    def close(self, timeout: float | None = None) -> Awaitable[None]: ...
    def __aiter__(self) -> AIOConsumer: ...
    def __anext__(self) -> Awaitable[Message]: ...
    def __aenter__(self) -> asyncio.Future[Self]: ...
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Awaitable[None]: ...

_Timeout: TypeAlias = float | None

@disjoint_base
class AIOAdminClient:
    def __init__(
        self,
        config: Mapping[str, Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None: ...
    def create_topics(
        self,
        new_topics: Sequence[NewTopic],
        *,
        operation_timeout: _Timeout = None,
        request_timeout: _Timeout = None,
        validate_only: bool = False,
    ) -> dict[str, asyncio.Future[None]]: ...
    def delete_topics(
        self,
        topics: Sequence[str],
        *,
        operation_timeout: _Timeout = None,
        request_timeout: _Timeout = None,
    ) -> dict[str, asyncio.Future[None]]: ...
    def create_partitions(
        self,
        new_partitions: Sequence[NewPartitions],
        *,
        operation_timeout: _Timeout = None,
        request_timeout: _Timeout = None,
        validate_only: bool = False,
    ) -> dict[str, asyncio.Future[None]]: ...
    def describe_configs(
        self,
        resources: Sequence[ConfigResource],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[ConfigResource, asyncio.Future[dict[str, ConfigEntry]]]: ...
    def alter_configs(
        self,
        resources: Sequence[ConfigResource],
        *,
        request_timeout: _Timeout = None,
        validate_only: bool = False,
    ) -> dict[ConfigResource, asyncio.Future[None]]: ...
    def delete_records(
        self,
        topic_partition_offsets: Sequence[TopicPartition],
        *,
        operation_timeout: _Timeout = None,
        request_timeout: _Timeout = None,
    ) -> dict[TopicPartition, asyncio.Future[DeletedRecords]]: ...
    def list_consumer_groups(
        self,
        *,
        states: Iterable[ConsumerGroupState] | None = None,
        request_timeout: _Timeout = None,
    ) -> asyncio.Future[ListConsumerGroupsResult]: ...
    def describe_consumer_groups(
        self,
        group_ids: Sequence[str],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[str, asyncio.Future[ConsumerGroupDescription]]: ...
    def delete_consumer_groups(
        self,
        group_ids: Sequence[str],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[str, asyncio.Future[None]]: ...
    def list_consumer_group_offsets(
        self,
        list_consumer_group_offsets_request: Sequence[
            ConsumerGroupTopicPartitions
        ],
        *,
        require_stable: bool = False,
        request_timeout: _Timeout = None,
    ) -> dict[str, asyncio.Future[ConsumerGroupTopicPartitions]]: ...
    def alter_consumer_group_offsets(
        self,
        alter_consumer_group_offsets_request: Sequence[
            ConsumerGroupTopicPartitions
        ],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[str, asyncio.Future[ConsumerGroupTopicPartitions]]: ...
    def delete_consumer_group_offsets(
        self,
        delete_consumer_group_offsets_request: Sequence[
            ConsumerGroupTopicPartitions
        ],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[str, asyncio.Future[ConsumerGroupTopicPartitions]]: ...
    def create_acls(
        self,
        acls: Sequence[AclBinding],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[AclBinding, asyncio.Future[None]]: ...
    def describe_acls(
        self,
        acl_binding_filter: AclBindingFilter,
        *,
        request_timeout: _Timeout = None,
    ) -> asyncio.Future[list[AclBinding]]: ...
    def delete_acls(
        self,
        acl_binding_filters: Sequence[AclBindingFilter],
        *,
        request_timeout: _Timeout = None,
    ) -> dict[AclBindingFilter, asyncio.Future[list[AclBinding]]]: ...
    def list_topics(
        self, topic: str | None = None, timeout: float | None = None
    ) -> asyncio.Future[ClusterMetadata]: ...
    def close(self, timeout: float | None = None) -> Awaitable[None]: ...
    def __aenter__(self) -> asyncio.Future[Self]: ...
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Awaitable[None]: ...
