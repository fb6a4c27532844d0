"""compose.yaml and compose.scale.yaml as Docker Compose v2 reads them: valid against the Compose Specification's
JSON schema, the one `docker compose` validates a file with (tests/data/compose-spec.json, from
github.com/compose-spec/compose-spec, schema/compose-spec.json as of commit a08f8d5, October 2025). The stacks
themselves run in tests/test_compose.py, with Debian's docker-compose 1.29."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())


def problems(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


@pytest.mark.parametrize("name", ["compose.yaml", "compose.scale.yaml", "tests/data/compose.host-build.yaml"])
def test_the_compose_files_are_valid_compose_specification_files(name):
    assert problems(yaml.safe_load((ROOT / name).read_text())) == []


def test_the_schema_finds_a_mistake():
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    document["services"]["dashboard"]["restart_policy"] = "always"  # a deploy key, misplaced
    document["services"]["registry"]["healthcheck"] = {"interval": 2}  # a duration is a string
    assert len(problems(document)) == 2
