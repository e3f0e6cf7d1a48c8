"""Bad settings fail when the definitions load or the run's resources start, naming the variable.

Each case runs ``daily_posts``'s assets through ``resources_from_env()`` (the code location's
own ``EnvVar`` wiring) against a world that is already set up: the run must stop before its
first step, so nothing is generated, paid for or created, and the set-up work is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from bad_input_helpers import DAY, GOOD_ID, GOOD_WORLD, failure_text, steps_started
from dagster import DagsterInvalidConfigError, materialize
from pipeline_helpers import DAILY, Bed, test_bed

from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.definitions import resources_from_env
from generia_pipelines.partitions import world_day_key
from generia_pipelines.resources.runware import RunwareResource

PIPELINE_PREFIXES = ("GENERIA_", "RUNWARE_")


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """A stack with the good world set up once for every case of the module."""
    with test_bed(tmp_path_factory.mktemp("settings")) as bed:
        bed.write_worlds([GOOD_WORLD])
        assert bed.setup(GOOD_ID).success
        yield bed


@pytest.fixture
def env(ready: Bed, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment of a deployment pointed at the bed (file catalog, local text)."""
    for name in list(os.environ):
        if name.startswith(PIPELINE_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in ready.stack.env.items():
        if name not in ("GENERIA_WORLD_ADDR", "GENERIA_STACK_URL"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("GENERIA_WORLDS_FILE", str(ready.worlds_file))
    monkeypatch.setenv("GENERIA_LEDGER_URL", ready.ledger_url)
    monkeypatch.setenv("GENERIA_TEXT_BACKEND", "local")
    return monkeypatch


def _run(bed: Bed, resources: dict[str, Any]) -> Any:
    return materialize(
        DAILY,
        partition_key=world_day_key(GOOD_ID, DAY),
        resources=resources,
        instance=bed.instance,
        raise_on_error=False,
    )


def _nothing_done(bed: Bed) -> None:
    """The failed run paid for nothing and planned nothing; the world's setup is intact."""
    assert bed.runware.standin is not None
    assert bed.runware.standin.stats.images_generated == GOOD_WORLD["characters"]
    with bed.ledger() as ledger:
        assert ledger.units(GOOD_ID, "posts", DAY) == []
        assert len([u for u in ledger.units(GOOD_ID, "characters") if u.done]) == 2
        assert len([u for u in ledger.units(GOOD_ID, "avatars") if u.done]) == 2
    assert bed.platform(GOOD_ID, "posts") == []


# (variables to set, None = unset; what the resource setup failure says)
AT_SETUP: list[tuple[dict[str, str | None], str]] = [
    (
        {"GENERIA_MEDIA_ADDR": "nope"},
        "GENERIA_MEDIA_ADDR='nope' is not a valid gRPC address (want host:port)",
    ),
    (
        {"GENERIA_POST_ADDR": "127.0.0.1:70000"},
        "GENERIA_POST_ADDR='127.0.0.1:70000' is not a valid gRPC address (want host:port)",
    ),
    (
        {"GENERIA_GRPC_CA_FILE": "/nonexistent/ca.pem"},
        "GENERIA_GRPC_CA_FILE='/nonexistent/ca.pem': no such file",
    ),
    ({"RUNWARE_API_KEY": ""}, "RUNWARE_API_KEY is not set: give the Runware API key"),
    ({"RUNWARE_URL": "http://x"}, "RUNWARE_URL='http://x' is not a ws:// or wss:// URL"),
    (
        {"RUNWARE_IMAGE_MODEL": "sdxl"},
        "RUNWARE_IMAGE_MODEL='sdxl' is not a model AIR id like runware:100@1",
    ),
    (
        {"GENERIA_TEXT_BACKEND": "gpt5"},
        "GENERIA_TEXT_BACKEND='gpt5' is not a text backend; choose one of: local, openai, runware",
    ),
    (
        {
            "GENERIA_TEXT_BACKEND": "openai",
            "GENERIA_TEXT_BASE_URL": "http://127.0.0.1:9/v1",
            "GENERIA_TEXT_MODEL": "some-model",
        },
        "GENERIA_TEXT_API_KEY is not set: give the endpoint's API key "
        "(any placeholder for a server that needs none)",
    ),
    (
        {
            "GENERIA_TEXT_BACKEND": "openai",
            "GENERIA_TEXT_BASE_URL": "localhost:8000",
            "GENERIA_TEXT_API_KEY": "k-123456",
            "GENERIA_TEXT_MODEL": "some-model",
        },
        "GENERIA_TEXT_BASE_URL='localhost:8000' is not an http(s) URL",
    ),
    (
        {"GENERIA_LEDGER_URL": "not a url"},
        "GENERIA_LEDGER_URL is not a valid SQLAlchemy URL",
    ),
]
SETUP_IDS = [
    "bad-address",
    "port-out-of-range",
    "missing-ca-file",
    "empty-runware-key",
    "runware-url-not-ws",
    "model-not-air",
    "unknown-text-backend",
    "openai-without-key",
    "openai-url-without-scheme",
    "ledger-url",
]


@pytest.mark.parametrize(("variables", "says"), AT_SETUP, ids=SETUP_IDS)
def test_a_bad_setting_fails_resource_setup_naming_the_variable(
    ready: Bed, env: pytest.MonkeyPatch, variables: dict[str, str | None], says: str
) -> None:
    for name, value in variables.items():
        env.setenv(name, value or "")
    result = _run(ready, resources_from_env())
    assert not result.success
    assert f"ConfigError: {says}" in failure_text(result)
    assert steps_started(result) == []  # stopped before the first step
    _nothing_done(ready)


def test_a_missing_runware_key_fails_before_the_run_starts(
    ready: Bed, env: pytest.MonkeyPatch
) -> None:
    env.delenv("RUNWARE_API_KEY")
    with pytest.raises(DagsterInvalidConfigError) as caught:
        _run(ready, resources_from_env())
    assert (
        'You have attempted to fetch the environment variable "RUNWARE_API_KEY" which is not set'
        in str(caught.value)
    )
    _nothing_done(ready)


def test_a_wrong_runware_key_fails_setup_without_showing_it(
    ready: Bed, env: pytest.MonkeyPatch
) -> None:
    wrong = "rw-wrong-3c7d91f2"
    env.setenv("RUNWARE_API_KEY", wrong)
    result = _run(ready, resources_from_env())
    text = failure_text(result)
    url = ready.stack.env["RUNWARE_URL"]
    assert (
        f"RunwareAuthError: Runware at {url} rejected the API key from RUNWARE_API_KEY: "
        "Invalid API key. Get one at https://my.runware.ai/signup"
    ) in text
    assert wrong not in text
    assert steps_started(result) == []
    _nothing_done(ready)


@pytest.mark.parametrize(
    ("size", "says"),
    [
        ({"width": 500}, "Runware image width=500 must be a multiple of 64 between 128 and 2048"),
        (
            {"height": 4096},
            "Runware image height=4096 must be a multiple of 64 between 128 and 2048",
        ),
        ({"width": 64}, "Runware image width=64 must be a multiple of 64 between 128 and 2048"),
    ],
    ids=["width-500", "height-4096", "width-64"],
)
def test_an_image_size_runware_refuses_fails_setup(
    ready: Bed, env: pytest.MonkeyPatch, size: dict[str, int], says: str
) -> None:
    resources = {**resources_from_env(), "runware": RunwareResource.from_env(**size)}
    result = _run(ready, resources)
    assert f"ConfigError: {says}" in failure_text(result)
    assert steps_started(result) == []
    _nothing_done(ready)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (
            "RUNWARE_ENHANCE_PROMPT",
            "maybe",
            "RUNWARE_ENHANCE_PROMPT='maybe' is not a boolean (use true/false, 1/0, yes/no)",
        ),
        ("GENERIA_GRPC_TLS", "perhaps", "GENERIA_GRPC_TLS='perhaps' is not a boolean"),
    ],
)
def test_a_malformed_flag_fails_when_the_definitions_load(
    env: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        resources_from_env()
    assert says in str(caught.value)


def test_with_the_settings_fixed_the_day_completes_and_pays_once(
    ready: Bed, env: pytest.MonkeyPatch
) -> None:
    """Runs last: after every failed setup above, the day completes with one image per post."""
    assert _run(ready, resources_from_env()).success
    assert len(ready.platform(GOOD_ID, "posts")) == GOOD_WORLD["posts_per_day"]
    assert ready.runware.standin is not None
    paid = ready.runware.standin.stats.images_generated
    assert paid == GOOD_WORLD["characters"] + GOOD_WORLD["posts_per_day"]
