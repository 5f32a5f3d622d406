"""`ferry operator` with a bad FERRY_* value: one line naming the variable, exit 1, before kopf starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli


@pytest.mark.parametrize(("name", "value", "line"), [
    ("FERRY_POLICY", '{"allowedImage": ["x"]}', "Error: FERRY_POLICY (allowedImage): Extra inputs are not permitted"),
    ("FERRY_POLICY", '{"resources": {"maxMemory": "lots"}}', "Error: FERRY_POLICY (resources.maxMemory): "),
    ("FERRY_POLICY", "not json", "Error: FERRY_POLICY: not valid JSON"),
    ("FERRY_METRICS_PORT", "99999", "Error: FERRY_METRICS_PORT: Input should be less than or equal to 65535"),
])
def test_a_bad_setting_is_one_line(name: str, value: str, line: str) -> None:
    done = CliRunner().invoke(cli, ["operator", "--namespace", "ml"], env={name: value})
    assert done.exit_code == 1
    assert done.output.strip().startswith(line) and len(done.output.strip().splitlines()) == 1, done.output
