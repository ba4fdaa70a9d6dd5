"""The workflow `peerlab init-ci github` writes, validated against GitHub Actions' published
schema (SchemaStore's github-workflow.json, vendored in tests/data/schemastore/), and read
for what the plan asks of it: categories with their budgets and parallelism, the schedules,
results uploaded, failures posted to a webhook."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from peerlab.cli.ci import NIGHTLY, WEEKLY, Category, workflow
from peerlab.errors import UsageError

SCHEMA = Path(__file__).parents[2] / "data" / "schemastore" / "github-workflow.json"


class _GithubLoader(yaml.SafeLoader):
    """YAML as GitHub reads it: `on` is a key, not the boolean YAML 1.1 makes of it."""


_GithubLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_GithubLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def load(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=_GithubLoader)
    assert isinstance(data, dict)
    return data


def validate(data: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(data)


def test_the_workflow_is_valid_for_github_actions() -> None:
    validate(load(workflow()))


def test_the_schema_check_can_fail() -> None:
    data = load(workflow())
    data["jobs"]["unit"]["runs-on"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validate(data)
    broken = load(workflow())
    del broken["jobs"]["unit"]["steps"][0]["uses"]  # a step that neither runs nor uses
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_categories_schedules_uploads_and_the_failure_notice() -> None:
    data = load(workflow())
    jobs = data["jobs"]
    assert set(jobs) == {"unit", "integration", "e2e", "nightly", "full-regression", "notify"}
    assert [s["cron"] for s in data["on"]["schedule"]] == [NIGHTLY, WEEKLY]
    assert NIGHTLY == "0 2 * * *" and WEEKLY == "0 3 * * 0", "02:00 daily, Sundays"
    budgets = {}
    for name in ("unit", "integration", "e2e"):
        [step] = [s for s in jobs[name]["steps"] if "pytest" in s.get("run", "")]
        workers = int(re.search(r" -n (\d+)", step["run"]).group(1))  # type: ignore[union-attr]
        budgets[name] = (step["timeout-minutes"], workers)
        assert "--peerlab-reruns 2" in step["run"]
        assert "--peerlab-impacted $CHANGED_SINCE" in step["run"], "pull requests: impacted"
    assert budgets == {"unit": (2, 4), "integration": (5, 2), "e2e": (10, 1)}
    assert "github.event.schedule == '0 2 * * *'" in jobs["nightly"]["if"]
    assert "github.event.schedule == '0 3 * * 0'" in jobs["full-regression"]["if"]
    assert any("coverage-gate" in s.get("run", "") for s in jobs["full-regression"]["steps"])
    assert any("impact-map" in s.get("run", "") for s in jobs["full-regression"]["steps"])
    for name, job in jobs.items():
        if name == "notify":
            continue
        uploads = [s for s in job["steps"] if s.get("uses") == "actions/upload-artifact@v4"]
        assert uploads and uploads[0]["with"]["path"] == "peerlab-results/", name
        assert uploads[0]["if"] == "always()", f"{name} uploads its results when it fails too"
    notify = jobs["notify"]
    assert notify["if"] == "failure()"
    assert set(notify["needs"]) == {"unit", "integration", "e2e", "nightly", "full-regression"}
    [post] = notify["steps"]
    assert post["env"]["WEBHOOK"] == "${{ secrets.PEERLAB_WEBHOOK_URL }}"
    assert '{"text": os.environ["TEXT"]}' in post["run"], "a Slack-style payload"


def test_categories_can_be_chosen_and_bad_ones_are_named() -> None:
    custom = (Category.parse("fast=tests/fast:8:1"),)
    data = load(workflow(categories=custom))
    validate(data)
    assert "fast" in data["jobs"] and "unit" not in data["jobs"]
    assert data["jobs"]["notify"]["needs"][0] == "fast"
    for bad in ("fast", "fast=tests:x:1", "9x=tests:1:1"):
        with pytest.raises(UsageError, match="NAME=PATH:WORKERS:MINUTES"):
            Category.parse(bad)
