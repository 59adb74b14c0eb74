"""Value types of AIOAdminClient, with confluent-kafka's names and fields.

They are plain Python classes: the C client reads their attributes when a
request is built and makes them from librdkafka's results.  Enum values
are librdkafka's own numbers, so they cross into C as ints.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ._core import KafkaError, TopicPartition

__all__ = [
    "AclBinding",
    "AclBindingFilter",
    "AclOperation",
    "AclPermissionType",
    "ConfigEntry",
    "ConfigResource",
    "ConfigSource",
    "ConsumerGroupDescription",
    "ConsumerGroupListing",
    "ConsumerGroupState",
    "ConsumerGroupTopicPartitions",
    "DeletedRecords",
    "ListConsumerGroupsResult",
    "MemberAssignment",
    "MemberDescription",
    "NewPartitions",
    "NewTopic",
    "Node",
    "ResourcePatternType",
    "ResourceType",
]


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    BROKER = 4


class ResourcePatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


class ConfigSource(IntEnum):
    UNKNOWN_CONFIG = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class ConsumerGroupState(IntEnum):
    UNKNOWN = 0
    PREPARING_REBALANCING = 1
    COMPLETING_REBALANCING = 2
    STABLE = 3
    DEAD = 4
    EMPTY = 5


def _enum(cls: type[IntEnum], value: object, what: str) -> Any:
    """An enum member from a member, an int or a (case-blind) name."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"{what}: unknown {cls.__name__} {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what}: unknown {cls.__name__} {value!r}")
    raise TypeError(
        f"{what} must be a {cls.__name__}, int or str, not "
        f"{type(value).__name__}"
    )


def _str(value: object, what: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return value


def _configs(config: object, what: str) -> dict[str, str]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TypeError(
            f"{what} must be a dict of str, not {type(config).__name__}"
        )
    out: dict[str, str] = {}
    for k, v in config.items():
        if not isinstance(k, str):
            raise TypeError(f"{what} keys must be str, not {type(k).__name__}")
        out[k] = v if isinstance(v, str) else str(v)
    return out


class NewTopic:
    """A topic to create: num_partitions and replication_factor -1 take
    the broker's defaults; replica_assignment lists the broker ids of each
    partition instead of replication_factor."""

    def __init__(
        self,
        topic: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        replica_assignment: list[list[int]] | None = None,
        config: dict[str, str] | None = None,
    ) -> None:
        self.topic: str = _str(topic, "topic")
        self.num_partitions = int(num_partitions)
        self.replication_factor = int(replication_factor)
        self.replica_assignment: list[list[int]] = [
            [int(b) for b in r] for r in (replica_assignment or [])
        ]
        self.config: dict[str, str] = _configs(config, "config")

    def __repr__(self) -> str:
        return (
            f"NewTopic(topic={self.topic!r}, "
            f"num_partitions={self.num_partitions}, "
            f"replication_factor={self.replication_factor})"
        )


class NewPartitions:
    """Grow topic to new_total_count partitions."""

    def __init__(
        self,
        topic: str,
        new_total_count: int,
        replica_assignment: list[list[int]] | None = None,
    ) -> None:
        self.topic: str = _str(topic, "topic")
        self.new_total_count = int(new_total_count)
        self.replica_assignment: list[list[int]] = [
            [int(b) for b in r] for r in (replica_assignment or [])
        ]

    def __repr__(self) -> str:
        return (
            f"NewPartitions(topic={self.topic!r}, "
            f"new_total_count={self.new_total_count})"
        )


class ConfigEntry:
    """One configuration property of a ConfigResource."""

    def __init__(
        self,
        name: str,
        value: str | None,
        source: ConfigSource = ConfigSource.UNKNOWN_CONFIG,
        is_read_only: bool = False,
        is_default: bool = False,
        is_sensitive: bool = False,
        is_synonym: bool = False,
        synonyms: list[ConfigEntry] | None = None,
    ) -> None:
        self.name = name
        self.value = value
        # A source newer than this list stays a plain int.
        self.source: ConfigSource | int = (
            ConfigSource(source)
            if source in ConfigSource._value2member_map_
            else int(source)
        )
        self.is_read_only = bool(is_read_only)
        self.is_default = bool(is_default)
        self.is_sensitive = bool(is_sensitive)
        self.is_synonym = bool(is_synonym)
        self.synonyms: dict[str, ConfigEntry] = {
            s.name: s for s in (synonyms or [])
        }

    def __repr__(self) -> str:
        return f"ConfigEntry({self.name}={self.value!r})"

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class ConfigResource:
    """A resource (topic, broker) whose configuration is described or
    altered.  Equal (and hashed) by type and name."""

    Type = ResourceType

    def __init__(
        self,
        restype: ResourceType | int | str,
        name: str,
        set_config: dict[str, str] | None = None,
        described_configs: dict[str, ConfigEntry] | None = None,
        error: KafkaError | None = None,
    ) -> None:
        self.restype: ResourceType = _enum(ResourceType, restype, "restype")
        self.name: str = _str(name, "name")
        self.set_config_dict: dict[str, str] = _configs(
            set_config, "set_config"
        )
        self.configs = described_configs
        self.error = error

    def set_config(
        self, name: str, value: str, overwrite: bool = True
    ) -> None:
        """Sets a property to alter (alter_configs replaces every dynamic
        property of the resource with this set)."""
        if not overwrite and name in self.set_config_dict:
            return
        self.set_config_dict[_str(name, "name")] = str(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigResource):
            return NotImplemented
        return (self.restype, self.name) == (other.restype, other.name)

    def __hash__(self) -> int:
        return hash((int(self.restype), self.name))

    def __repr__(self) -> str:
        return f"ConfigResource({self.restype.name},{self.name})"


class AclBinding:
    """An ACL: who may do what on which resource."""

    _filter = False

    def __init__(
        self,
        restype: ResourceType | int | str,
        name: str | None,
        resource_pattern_type: ResourcePatternType | int | str,
        principal: str | None,
        host: str | None,
        operation: AclOperation | int | str,
        permission_type: AclPermissionType | int | str,
    ) -> None:
        opt = self._filter
        self.restype: ResourceType = _enum(ResourceType, restype, "restype")
        self.name: str | None = _str(name, "name", optional=opt)
        self.resource_pattern_type: ResourcePatternType = _enum(
            ResourcePatternType, resource_pattern_type,
            "resource_pattern_type",
        )
        self.principal: str | None = _str(
            principal, "principal", optional=opt
        )
        self.host: str | None = _str(host, "host", optional=opt)
        self.operation: AclOperation = _enum(
            AclOperation, operation, "operation"
        )
        self.permission_type: AclPermissionType = _enum(
            AclPermissionType, permission_type, "permission_type"
        )

    def _key(self) -> tuple[object, ...]:
        return (
            type(self)._filter, int(self.restype), self.name,
            int(self.resource_pattern_type), self.principal, self.host,
            int(self.operation), int(self.permission_type),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AclBinding):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(restype={self.restype.name}, "
            f"name={self.name!r}, resource_pattern_type="
            f"{self.resource_pattern_type.name}, principal="
            f"{self.principal!r}, host={self.host!r}, operation="
            f"{self.operation.name}, permission_type="
            f"{self.permission_type.name})"
        )


class AclBindingFilter(AclBinding):
    """Matches ACLs: None and the ANY values match everything."""

    _filter = True


class Node:
    """A broker, as a group coordinator."""

    def __init__(
        self, id: int, host: str, port: int, rack: str | None = None
    ) -> None:
        self.id = id
        self.id_string = str(id)
        self.host = host
        self.port = port
        self.rack = rack

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.host}:{self.port})"


class ConsumerGroupListing:
    def __init__(
        self,
        group_id: str,
        is_simple_consumer_group: bool,
        state: ConsumerGroupState | None = None,
    ) -> None:
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.state = state

    def __repr__(self) -> str:
        return f"ConsumerGroupListing({self.group_id!r}, {self.state!r})"


class ListConsumerGroupsResult:
    """valid: the groups listed; errors: a KafkaError for each broker that
    could not be asked."""

    def __init__(
        self,
        valid: list[ConsumerGroupListing] | None = None,
        errors: list[KafkaError] | None = None,
    ) -> None:
        self.valid: list[ConsumerGroupListing] = valid or []
        self.errors: list[KafkaError] = errors or []


class MemberAssignment:
    def __init__(
        self, topic_partitions: list[TopicPartition] | None = None
    ) -> None:
        self.topic_partitions: list[TopicPartition] = topic_partitions or []


class MemberDescription:
    def __init__(
        self,
        member_id: str,
        client_id: str,
        host: str,
        assignment: MemberAssignment | None = None,
        group_instance_id: str | None = None,
    ) -> None:
        self.member_id = member_id
        self.client_id = client_id
        self.host = host
        self.assignment = assignment or MemberAssignment()
        self.group_instance_id = group_instance_id


class ConsumerGroupDescription:
    def __init__(
        self,
        group_id: str,
        is_simple_consumer_group: bool,
        members: list[MemberDescription],
        partition_assignor: str,
        state: ConsumerGroupState,
        coordinator: Node | None,
    ) -> None:
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.members = members
        self.partition_assignor = partition_assignor
        self.state = state
        self.coordinator = coordinator

    def __repr__(self) -> str:
        return (
            f"ConsumerGroupDescription({self.group_id!r}, "
            f"{self.state!r}, {len(self.members)} members)"
        )


class ConsumerGroupTopicPartitions:
    """A group and some of its partitions (with offsets): the request and
    the result of list/alter_consumer_group_offsets."""

    def __init__(
        self,
        group_id: str,
        topic_partitions: list[TopicPartition] | None = None,
    ) -> None:
        self.group_id: str = _str(group_id, "group_id")
        self.topic_partitions = topic_partitions

    def __repr__(self) -> str:
        return (
            f"ConsumerGroupTopicPartitions({self.group_id!r}, "
            f"{self.topic_partitions!r})"
        )


class DeletedRecords:
    """delete_records(): the partition's new low watermark."""

    def __init__(self, low_watermark: int) -> None:
        self.low_watermark = low_watermark

    def __repr__(self) -> str:
        return f"DeletedRecords(low_watermark={self.low_watermark})"
