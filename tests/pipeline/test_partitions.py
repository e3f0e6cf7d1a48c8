"""World keys are refused with a reason; world × date keys are built and split both ways."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from dagster import DagsterInstance, DynamicPartitionsDefinition, MultiPartitionKey

from generia_pipelines.clients.errors import ConfigError, GeneriaError
from generia_pipelines.partitions import (
    DEFAULT_START_DATE,
    START_DATE_VARIABLE,
    InvalidWorldKey,
    WorldDay,
    parse_day,
    posts_start_date,
    split_world_day_key,
    validate_world_key,
    world_day_key,
    world_days_partitions_def,
    worlds_partitions,
)

GOOD_KEYS = [
    "neon-harbor",
    "a",
    "7",
    "0-world",
    "a" * 64,
    "world-2026",
    "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
]

BAD_KEYS = [
    ("", "it is empty"),
    (" neon", "leading or trailing whitespace"),
    ("neon\n", "leading or trailing whitespace"),
    ("a" * 65, "65 characters long, the limit is 64"),
    ("a|b", "'|', which Dagster uses to join multi-partition keys"),
    ("a,b", "',', which Dagster uses to separate partition keys"),
    ("café", "non-ASCII character 'é' (LATIN SMALL LETTER E WITH ACUTE)"),
    ("мир", "non-ASCII character"),
    ("a\u200bb", "non-ASCII character"),
    ("Neon", "uppercase letters"),
    ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "uppercase UUID; use its lowercase form"),
    ("-neon", "starts with '-'"),
    ("neon_harbor", "contains '_'"),
    ("neon harbor", "contains ' '"),
    ("neon/harbor", "contains '/'"),
    ("neon.harbor", "contains '.'"),
    ("neon:harbor", "contains ':'"),
    ("neon\tharbor", "contains '\\t'"),
    ("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", "starts with '{'"),
]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_valid_world_keys_are_returned_unchanged(key: str) -> None:
    assert validate_world_key(key) == key


@pytest.mark.parametrize(("key", "reason"), BAD_KEYS)
def test_every_bad_world_key_is_refused_with_its_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidWorldKey) as caught:
        validate_world_key(key)
    message = str(caught.value)
    assert reason in message
    assert repr(key) in message  # names the key
    assert "lowercase ASCII letters, digits and '-'" in message  # and the rule


@pytest.mark.parametrize("key", [None, 42, b"neon", ["neon"]])
def test_non_string_world_keys_are_refused(key: object) -> None:
    with pytest.raises(InvalidWorldKey, match="not a string"):
        validate_world_key(key)


def test_invalid_world_key_is_both_a_value_error_and_a_generia_error() -> None:
    with pytest.raises(ValueError):
        validate_world_key("A")
    with pytest.raises(GeneriaError):
        validate_world_key("A")


def test_worlds_partitions_is_the_dynamic_worlds_definition() -> None:
    assert isinstance(worlds_partitions, DynamicPartitionsDefinition)
    assert worlds_partitions.name == "worlds"


def test_start_date_default_variable_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_DATE_VARIABLE, raising=False)
    assert posts_start_date() == DEFAULT_START_DATE
    monkeypatch.setenv(START_DATE_VARIABLE, "2026-10-05")
    assert posts_start_date() == "2026-10-05"
    assert posts_start_date("2026-09-01") == "2026-09-01"


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01", "20261101", "2026-11-1", "2026-W47"])
def test_bad_start_date_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(START_DATE_VARIABLE, raw)
    with pytest.raises(ConfigError, match=f"{START_DATE_VARIABLE}='{raw}' is not a date"):
        posts_start_date()


def test_world_days_dimensions_and_keys_with_a_real_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(START_DATE_VARIABLE, "2026-11-20")
    definition = world_days_partitions_def()
    assert [d.name for d in definition.partitions_defs] == ["date", "world"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("worlds", ["my-world", "neon-harbor"])
        keys = definition.get_partition_keys(
            current_time=datetime(2026, 11, 23, 12), dynamic_partitions_store=instance
        )
    assert len(keys) == 3 * 2  # days 20, 21, 22 (the 23rd is not over) × two worlds
    assert "2026-11-22|my-world" in keys
    assert world_day_key("my-world", "2026-11-22") in keys


def test_world_day_key_builds_date_then_world() -> None:
    key = world_day_key("my-world", date(2026, 11, 24))
    assert isinstance(key, MultiPartitionKey)
    assert str(key) == "2026-11-24|my-world"
    assert key.keys_by_dimension == {"world": "my-world", "date": "2026-11-24"}
    assert world_day_key("my-world", datetime(2026, 11, 24, 23, 59)) == key


def test_split_world_day_key_accepts_strings_and_multi_keys() -> None:
    expected = WorldDay("my-world", date(2026, 11, 24))
    assert split_world_day_key("2026-11-24|my-world") == expected
    assert split_world_day_key(world_day_key("my-world", "2026-11-24")) == expected


@pytest.mark.parametrize(
    "key",
    [
        "my-world",
        "my-world|2026-11-24",
        "2026-11-24|my|world",
        "2026-11-24|My-World",
        "2026-11-24|",
        "24.11.2026|my-world",
    ],
)
def test_split_world_day_key_refuses_other_shapes(key: str) -> None:
    with pytest.raises(ValueError):
        split_world_day_key(key)


def test_world_day_key_validates_its_parts() -> None:
    with pytest.raises(InvalidWorldKey):
        world_day_key("a|b", "2026-11-24")
    with pytest.raises(ValueError, match="is not a date"):
        world_day_key("ok", "2026-02-30")
    with pytest.raises(ValueError):
        split_world_day_key(MultiPartitionKey({"world": "ok", "region": "eu"}))


def test_parse_day_is_strict() -> None:
    assert parse_day("2026-11-24") == date(2026, 11, 24)
    for bad in ["2026-11-24T00:00", "20261124", "", "2026-1-24"]:
        with pytest.raises(ValueError):
            parse_day(bad)
