"""K, the partitions per run, is read when the definitions load: a bad value stops the code
location from loading, naming the variable, instead of a backfill failing later."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from generia_pipelines.assets.batch import partitions_per_run
from generia_pipelines.clients.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("lots", "GENERIA_PARTITIONS_PER_RUN='lots' is not a whole number of partitions"),
        ("0", "GENERIA_PARTITIONS_PER_RUN=0 must be within 1..1000"),
        ("5000", "GENERIA_PARTITIONS_PER_RUN=5000 must be within 1..1000"),
    ],
)
def test_a_bad_partitions_per_run_names_the_variable(raw: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        partitions_per_run(raw)
    assert says in str(caught.value)


def test_unset_or_blank_means_fifty() -> None:
    assert partitions_per_run("") == 50
    assert partitions_per_run(" 7 ") == 7


def test_the_code_location_refuses_to_load_with_a_bad_value() -> None:
    env = {**os.environ, "GENERIA_PARTITIONS_PER_RUN": "many", "RUNWARE_API_KEY": "load-only"}
    loaded = subprocess.run(
        [sys.executable, "-c", "import generia_pipelines.definitions"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert loaded.returncode != 0
    assert "GENERIA_PARTITIONS_PER_RUN='many' is not a whole number of partitions" in (
        loaded.stderr
    )


def test_the_assets_take_k_partitions_per_backfill_run() -> None:
    env = {**os.environ, "GENERIA_PARTITIONS_PER_RUN": "7", "RUNWARE_API_KEY": "load-only"}
    probe = (
        "from generia_pipelines.definitions import ASSETS; "
        "print(sorted({a.backfill_policy.max_partitions_per_run for a in ASSETS}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[7]"
