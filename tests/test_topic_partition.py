"""TopicPartition, the metadata result types and ConsumerGroupMetadata:
construction, validation, equality/hash/ordering (checked against
confluent-kafka's TopicPartition), and the C conversions to and from
librdkafka, reached through the private _core._tplist_roundtrip,
_mock_metadata and _cgm_* functions (no client needed)."""

from __future__ import annotations

import gc
import inspect
import pickle
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiokafka_c
from aiokafka_c import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    BrokerMetadata,
    ClusterMetadata,
    ConsumerGroupMetadata,
    KafkaError,
    PartitionMetadata,
    TopicMetadata,
    TopicPartition,
    _core,
)
from tests import _hyp

HYP = settings(settings.get_profile(_hyp.profile_name()))

# Topic names as a C string can carry them: non-empty, no NUL.
topics = st.text(
    st.characters(exclude_characters="\0", exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
partitions = st.integers(-1, 2**31 - 1)
offsets = st.integers(-(2**63), 2**63 - 1)


# ---- construction -----------------------------------------------------


def test_offset_constants_are_librdkafkas() -> None:
    assert (OFFSET_BEGINNING, OFFSET_END, OFFSET_STORED, OFFSET_INVALID) == (
        -2,
        -1,
        -1000,
        -1001,
    )
    assert OFFSET_BEGINNING == confluent_kafka.OFFSET_BEGINNING
    assert OFFSET_END == confluent_kafka.OFFSET_END
    assert OFFSET_STORED == confluent_kafka.OFFSET_STORED
    assert OFFSET_INVALID == confluent_kafka.OFFSET_INVALID


def test_defaults() -> None:
    tp = TopicPartition("t")
    assert tp.topic == "t"
    assert tp.partition == -1
    assert tp.offset == OFFSET_INVALID
    assert tp.metadata is None
    assert tp.error is None


def test_positional_and_keyword_arguments() -> None:
    a = TopicPartition("t", 3, 42, "meta")
    b = TopicPartition(metadata="meta", offset=42, partition=3, topic="t")
    for tp in (a, b):
        assert (tp.topic, tp.partition, tp.offset, tp.metadata) == (
            "t",
            3,
            42,
            "meta",
        )


def test_signature_is_introspectable() -> None:
    sig = inspect.signature(TopicPartition)
    assert list(sig.parameters) == ["topic", "partition", "offset", "metadata"]
    assert sig.parameters["partition"].default == -1
    assert sig.parameters["offset"].default == OFFSET_INVALID
    assert sig.parameters["metadata"].default is None


@pytest.mark.parametrize(
    "args",
    [
        (),
        (1,),
        (b"t",),
        (None,),
        ("t", "0"),
        ("t", 1.0),
        ("t", True),
        ("t", 0, "5"),
        ("t", 0, 5.0),
        ("t", 0, False),
        ("t", 0, 0, b"m"),
        ("t", 0, 0, 7),
        ("t", 0, 0, None, "extra"),
    ],
)
def test_bad_argument_types_raise_type_error(args: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        TopicPartition(*args)  # type: ignore[arg-type]


def test_unknown_keyword_raises_type_error() -> None:
    with pytest.raises(TypeError, match="leader_epoch"):
        TopicPartition("t", leader_epoch=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("topic", ["", "a\0b", "\0"])
def test_topic_a_c_string_cannot_carry_raises_value_error(topic: str) -> None:
    with pytest.raises(ValueError, match="topic"):
        TopicPartition(topic)


def test_unencodable_strings_raise_at_construction() -> None:
    with pytest.raises(UnicodeEncodeError):
        TopicPartition("a\udc80")
    with pytest.raises(UnicodeEncodeError):
        TopicPartition("t", metadata="\udc80")
    tp = TopicPartition("t")
    with pytest.raises(UnicodeEncodeError):
        tp.metadata = "\udc80"
    assert tp.metadata is None


@pytest.mark.parametrize(
    "kw",
    [
        {"partition": 2**31},
        {"partition": -(2**31) - 1},
        {"offset": 2**63},
        {"offset": -(2**63) - 1},
    ],
)
def test_out_of_range_integers_raise_overflow_error(
    kw: dict[str, Any],
) -> None:
    with pytest.raises(OverflowError):
        TopicPartition("t", **kw)


def test_integer_extremes_are_kept() -> None:
    tp = TopicPartition("t", 2**31 - 1, -(2**63))
    assert (tp.partition, tp.offset) == (2**31 - 1, -(2**63))
    tp.offset = 2**63 - 1
    assert tp.offset == 2**63 - 1


def test_str_subclass_arguments_are_stored_as_str() -> None:
    class S(str):
        pass

    tp = TopicPartition(S("t"), metadata=S("m"))
    assert type(tp.topic) is str and tp.topic == "t"
    assert type(tp.metadata) is str and tp.metadata == "m"
    tp.metadata = S("n")
    assert type(tp.metadata) is str and tp.metadata == "n"


def test_not_picklable() -> None:
    # Not supported (yet): must fail loudly, not lose fields.
    with pytest.raises((TypeError, pickle.PicklingError)):
        pickle.loads(pickle.dumps(TopicPartition("t", 1, 2)))


# ---- attributes -------------------------------------------------------


def test_offset_and_metadata_are_writable() -> None:
    tp = TopicPartition("t", 0)
    tp.offset = 17
    tp.metadata = "m"
    assert (tp.offset, tp.metadata) == (17, "m")
    tp.metadata = ""
    assert tp.metadata == ""
    tp.metadata = None
    assert tp.metadata is None
    tp.offset = OFFSET_BEGINNING
    assert tp.offset == -2


def test_attribute_writes_are_type_checked() -> None:
    tp = TopicPartition("t", 0, 5, "m")
    for bad in ("1", 1.5, None, True):
        with pytest.raises(TypeError):
            tp.offset = bad  # type: ignore[assignment]
    with pytest.raises(OverflowError):
        tp.offset = 2**63
    with pytest.raises(TypeError):
        tp.metadata = b"m"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        del tp.offset
    with pytest.raises(TypeError):
        del tp.metadata
    assert (tp.offset, tp.metadata) == (5, "m")


@pytest.mark.parametrize("name", ["topic", "partition", "error"])
def test_key_fields_and_error_are_read_only(name: str) -> None:
    tp = TopicPartition("t", 0)
    with pytest.raises(AttributeError):
        setattr(tp, name, getattr(tp, name))
    assert (tp.topic, tp.partition, tp.error) == ("t", 0, None)


def test_no_instance_dict() -> None:
    tp = TopicPartition("t")
    with pytest.raises(AttributeError):
        tp.extra = 1  # type: ignore[attr-defined]


# ---- equality, hash, ordering -----------------------------------------


def test_equal_by_topic_and_partition_only() -> None:
    a = TopicPartition("t", 1, 5, "x")
    b = TopicPartition("t", 1, 9)
    assert a == b and not (a != b)
    assert hash(a) == hash(b) == hash(("t", 1))
    assert a != TopicPartition("t", 2)
    assert a != TopicPartition("u", 1)
    assert len({a, b, TopicPartition("t", 2)}) == 2
    assert {a: 1}[b] == 1


def test_comparison_with_other_types() -> None:
    tp = TopicPartition("t", 1)
    assert tp != ("t", 1)
    assert not (tp == "t")
    assert tp != 1
    with pytest.raises(TypeError):
        tp < ("t", 2)  # type: ignore[operator]  # noqa: B015


def test_ordering_by_topic_then_partition() -> None:
    tps = [
        TopicPartition("b", 0),
        TopicPartition("a", 2),
        TopicPartition("a", -1),
        TopicPartition("ab", 0),
        TopicPartition("a", 10),
    ]
    got = [(t.topic, t.partition) for t in sorted(tps)]
    assert got == [("a", -1), ("a", 2), ("a", 10), ("ab", 0), ("b", 0)]
    a, b = TopicPartition("a", 1), TopicPartition("a", 2)
    assert a < b and a <= b and b > a and b >= a
    assert a <= TopicPartition("a", 1) >= a
    assert not (a > b) and not (a >= b)


@HYP
@given(topics, partitions, topics, partitions, offsets, offsets)
def test_eq_hash_order_consistent_and_like_confluent(
    t1: str, p1: int, t2: str, p2: int, o1: int, o2: int
) -> None:
    a = TopicPartition(t1, p1, o1)
    b = TopicPartition(t2, p2, o2)
    key = (t1, p1) == (t2, p2)
    assert (a == b) is key and (a != b) is (not key)
    if a == b:
        assert hash(a) == hash(b)
    assert hash(a) == hash((t1, p1))
    assert (a < b) is ((t1, p1) < (t2, p2))
    assert (a <= b) is ((t1, p1) <= (t2, p2))
    assert (a > b) is ((t1, p1) > (t2, p2))
    assert (a >= b) is ((t1, p1) >= (t2, p2))
    # The same relations as confluent-kafka's TopicPartition.  Its C
    # compares the UTF-8 bytes, which orders like code points.
    ca = confluent_kafka.TopicPartition(t1, p1, o1)
    cb = confluent_kafka.TopicPartition(t2, p2, o2)
    assert (a == b) is (ca == cb)
    assert (a < b) is (ca < cb)


@HYP
@given(
    st.lists(
        st.tuples(
            topics,
            partitions,
            offsets,
            st.none() | st.text(st.characters(exclude_categories=["Cs"])),
        ),
        max_size=20,
    )
)
def test_roundtrip_through_librdkafka_keeps_every_field(
    fields: list[tuple[str, int, int, str | None]],
) -> None:
    tps = [TopicPartition(*f) for f in fields]
    back = _core._tplist_roundtrip(tps)
    assert [(t.topic, t.partition, t.offset, t.metadata) for t in back] == [
        (t, p, o, m) for t, p, o, m in fields
    ]
    assert all(type(t) is TopicPartition and t.error is None for t in back)


# ---- repr and subclasses ----------------------------------------------


def test_repr() -> None:
    assert (
        repr(TopicPartition("t", 0, 5))
        == "TopicPartition{topic=t,partition=0,offset=5,error=None}"
    )
    assert (
        repr(TopicPartition("t", 1, metadata="m"))
        == "TopicPartition{topic=t,partition=1,offset=-1001,"
        "metadata='m',error=None}"
    )
    err = _core._tp_with_error("t", 2, 3, KafkaError._NO_OFFSET)
    assert repr(err) == (
        "TopicPartition{topic=t,partition=2,offset=3,error="
        + repr(KafkaError(KafkaError._NO_OFFSET))
        + "}"
    )


def test_subclass() -> None:
    class MyTP(TopicPartition):
        def describe(self) -> str:
            return f"{self.topic}[{self.partition}]"

    m = MyTP("t", 4, offset=7)
    m.extra = "x"  # type: ignore[attr-defined]
    assert m.describe() == "t[4]"
    assert m.extra == "x"  # type: ignore[attr-defined]
    assert m == TopicPartition("t", 4) and TopicPartition("t", 4) == m
    assert hash(m) == hash(TopicPartition("t", 4))
    assert m < TopicPartition("t", 5)
    assert repr(m) == "MyTP{topic=t,partition=4,offset=7,error=None}"
    back = _core._tplist_roundtrip([m])
    assert type(back[0]) is TopicPartition and back[0].offset == 7


def test_subclass_with_its_own_signature_overrides_new() -> None:
    """topic and partition are fixed in __new__ (they are the hash key),
    so, as with int or tuple, a different signature goes in __new__."""

    class Numbered(TopicPartition):
        def __new__(cls, name: str, n: int) -> Numbered:
            return super().__new__(cls, f"{name}-{n}", n, offset=0)

    tp = Numbered("events", 3)
    assert (tp.topic, tp.partition, tp.offset) == ("events-3", 3, 0)
    assert tp == TopicPartition("events-3", 3)


def test_subclass_instance_in_a_cycle_is_collected() -> None:
    class MyTP(TopicPartition):
        pass

    m = MyTP("t")
    m.me = m  # type: ignore[attr-defined]
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None


# ---- conversion to and from librdkafka --------------------------------


def test_roundtrip_any_iterable() -> None:
    tps = [TopicPartition("a", 0, 1), TopicPartition("b", 1, 2, "m")]
    for it in (tps, tuple(tps), iter(tps), (t for t in tps)):
        assert _core._tplist_roundtrip(it) == tps
    assert _core._tplist_roundtrip([]) == []


def test_roundtrip_keeps_empty_metadata_distinct_from_none() -> None:
    back = _core._tplist_roundtrip(
        [TopicPartition("t", 0, metadata=""), TopicPartition("t", 1)]
    )
    assert back[0].metadata == ""
    assert back[1].metadata is None


def test_roundtrip_metadata_with_nul_and_non_ascii() -> None:
    tp = TopicPartition("t", 0, metadata="é\0ü")
    (back,) = _core._tplist_roundtrip([tp])
    assert back.metadata == "é\0ü"


def test_roundtrip_shares_a_topic_string() -> None:
    back = _core._tplist_roundtrip([TopicPartition("t", p) for p in range(4)])
    assert len({id(t.topic) for t in back}) == 1


@pytest.mark.parametrize(
    "arg, match",
    [
        (TopicPartition("t"), "single TopicPartition"),
        (5, "not int"),
        (None, "not NoneType"),
        ([TopicPartition("t"), ("t", 0)], "only TopicPartition, not tuple"),
        ("ab", "only TopicPartition, not str"),
        ({"t": 0}, "only TopicPartition, not str"),
    ],
)
def test_conversion_refuses_what_is_not_a_list_of_them(
    arg: object, match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        _core._tplist_roundtrip(arg)  # type: ignore[arg-type]


def test_conversion_passes_on_an_iterators_own_error() -> None:
    def gen() -> Iterator[TopicPartition]:
        yield TopicPartition("t")
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        _core._tplist_roundtrip(gen())


def test_result_entry_with_error() -> None:
    tp = _core._tp_with_error("t", 0, -1001, KafkaError.OFFSET_OUT_OF_RANGE)
    assert isinstance(tp.error, KafkaError)
    assert tp.error.code() == KafkaError.OFFSET_OUT_OF_RANGE
    assert _core._tp_with_error("t", 0, 0, 0).error is None


def test_conversions_do_not_leak() -> None:
    tps = [TopicPartition("t", p, p, "m" * p) for p in range(50)]
    for _ in range(200):
        _core._tplist_roundtrip(tps)
    before = sys.getrefcount(tps[0].topic), sys.getrefcount(tps[3].metadata)
    for _ in range(1000):
        _core._tplist_roundtrip(tps)
        _core._tp_with_error("t", 0, 0, KafkaError._FAIL)
    after = sys.getrefcount(tps[0].topic), sys.getrefcount(tps[3].metadata)
    assert before == after


# ---- metadata ---------------------------------------------------------


def test_cluster_metadata_from_a_mock_cluster() -> None:
    md = _core._mock_metadata(3, "topic-a", 4)
    assert type(md) is ClusterMetadata
    assert isinstance(md.cluster_id, str) and md.cluster_id
    assert isinstance(md.controller_id, int)
    assert sorted(md.brokers) == [1, 2, 3]
    for bid, b in md.brokers.items():
        assert type(b) is BrokerMetadata
        assert b.id == bid and b.host == "127.0.0.1" and 0 < b.port < 65536
        assert repr(b) == f"BrokerMetadata({bid}, 127.0.0.1:{b.port})"
    assert md.orig_broker_id in md.brokers
    assert isinstance(md.orig_broker_name, str)
    t = md.topics["topic-a"]
    assert type(t) is TopicMetadata
    assert t.topic == "topic-a" and t.error is None
    assert sorted(t.partitions) == [0, 1, 2, 3]
    assert repr(t) == "TopicMetadata(topic-a, 4 partitions)"
    for pid, p in t.partitions.items():
        assert type(p) is PartitionMetadata
        assert p.id == pid and p.error is None
        assert p.leader in md.brokers
        assert sorted(p.replicas) == [1, 2, 3]
        assert set(p.isrs) <= set(p.replicas)
        assert repr(p) == f"PartitionMetadata({pid}, leader={p.leader})"
    assert repr(md) == (
        f"ClusterMetadata(cluster_id={md.cluster_id!r}, "
        f"controller_id={md.controller_id}, 3 brokers, 1 topics)"
    )


def test_topic_metadata_error() -> None:
    md = _core._mock_metadata(
        1, "denied", 2, KafkaError.TOPIC_AUTHORIZATION_FAILED
    )
    t = md.topics["denied"]
    assert isinstance(t.error, KafkaError)
    assert t.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    n = len(t.partitions)
    assert repr(t) == f"TopicMetadata(denied, {n} partitions, {t.error!r})"


@pytest.mark.parametrize(
    "name",
    ["cluster_id", "controller_id", "brokers", "topics", "orig_broker_id"],
)
def test_metadata_attributes_are_read_only(name: str) -> None:
    md = _core._mock_metadata(1, "t", 1)
    with pytest.raises(AttributeError):
        setattr(md, name, None)
    b = next(iter(md.brokers.values()))
    with pytest.raises(AttributeError):
        b.port = 1  # type: ignore[misc]
    p = md.topics["t"].partitions[0]
    with pytest.raises(AttributeError):
        p.leader = 1  # type: ignore[misc]


def test_metadata_in_a_cycle_is_collected() -> None:
    """The types traverse their dicts and lists: a cycle through them is
    found (seen through a canary object held inside the cycle)."""

    class Canary:
        pass

    md = _core._mock_metadata(1, "t", 1)
    p = md.topics["t"].partitions[0]
    assert gc.is_tracked(md) and gc.is_tracked(p)
    assert md.topics in gc.get_referents(md)
    assert p.replicas in gc.get_referents(p)
    canaries = Canary(), Canary()
    md.topics["self"] = md  # type: ignore[assignment]
    md.brokers[-1] = canaries[0]  # type: ignore[assignment]
    p.isrs.append(p)  # type: ignore[arg-type]
    p.replicas.append(canaries[1])  # type: ignore[arg-type]
    refs = [weakref.ref(c) for c in canaries]
    del md, p, canaries
    gc.collect()
    assert [r() for r in refs] == [None, None]


@pytest.mark.parametrize(
    "tp",
    [
        ClusterMetadata,
        BrokerMetadata,
        TopicMetadata,
        PartitionMetadata,
        ConsumerGroupMetadata,
    ],
)
def test_result_types_are_not_constructible_nor_subclassable(
    tp: type,
) -> None:
    with pytest.raises(TypeError):
        tp()
    with pytest.raises(TypeError):
        type("Sub", (tp,), {})


# ---- ConsumerGroupMetadata --------------------------------------------


def test_consumer_group_metadata() -> None:
    cgm = _core._cgm_new("my-group")
    assert type(cgm) is ConsumerGroupMetadata
    assert repr(cgm) == "<ConsumerGroupMetadata>"
    assert _core._cgm_check(cgm) is True
    with pytest.raises(TypeError, match="ConsumerGroupMetadata"):
        _core._cgm_check(TopicPartition("t"))
    for _ in range(1000):  # each is destroyed with its object (ASan leg)
        _core._cgm_new("g")


def test_public_names() -> None:
    for name in (
        "TopicPartition",
        "ClusterMetadata",
        "BrokerMetadata",
        "TopicMetadata",
        "PartitionMetadata",
        "ConsumerGroupMetadata",
        "OFFSET_BEGINNING",
        "OFFSET_END",
        "OFFSET_STORED",
        "OFFSET_INVALID",
    ):
        assert name in aiokafka_c.__all__
        assert getattr(aiokafka_c, name) is getattr(_core, name)
