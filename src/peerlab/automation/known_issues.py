"""Known issues: failures the team already tracks, reported as xfail with their link.

`known-issues.toml` (next to pytest's rootdir, or `--peerlab-known-issues PATH`):

    looks_fixed_after = 5          # passes in a row before an issue "looks fixed"

    [[issue]]
    test = "tests/e2e/test_sync.py::test_big_files"   # a test id, or
    signature = "Not linearizable on key '.*'"         # a regex over the failure's text
    link = "https://github.com/org/project/issues/12"
    reason = "downloads over 64 MiB time out on CI runners"

An issue with both `test` and `signature` needs both to match. A matching failure is
reported as xfail, not strict: the test still runs, and when it passes it is a plain pass.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from peerlab.errors import UsageError
from peerlab.manifest_schema import Regex

FILE = "known-issues.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class KnownIssue(_Strict):
    test: str | None = None
    signature: Regex | None = None
    link: str = Field(min_length=1)
    reason: str = Field(min_length=1)

    def matches(self, test: str, failure: str) -> bool:
        if self.test is None and self.signature is None:
            return False
        if self.test is not None and self.test != test:
            return False
        return self.signature is None or re.search(self.signature, failure) is not None

    def describe(self) -> str:
        return f"known issue {self.link}: {self.reason}"


class _File(_Strict):
    looks_fixed_after: int = Field(5, ge=1)
    issue: list[KnownIssue] = Field(default_factory=list)


@dataclass(frozen=True)
class KnownIssues:
    issues: tuple[KnownIssue, ...] = ()
    looks_fixed_after: int = 5
    source: Path | None = None

    def match(self, test: str, failure: str) -> KnownIssue | None:
        return next((i for i in self.issues if i.matches(test, failure)), None)


def load(path: Path, *, required: bool = False) -> KnownIssues:
    """The issues in `path`; none when it does not exist (unless `required`)."""
    field = "--peerlab-known-issues"
    if not path.exists():
        if required:
            raise UsageError(f"{path} does not exist", field=field, hint="name a TOML file")
        return KnownIssues()
    try:
        data = _File.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})", field=field) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in error["loc"])
        raise UsageError(
            f"{path}: field '{where.replace('.[', '[')}' {error['msg'].lower()}",
            field=where,
            hint="each [[issue]] has link, reason and a test id or a signature regex",
        ) from None
    for number, issue in enumerate(data.issue, 1):
        if issue.test is None and issue.signature is None:
            raise UsageError(
                f"{path}: issue {number} ({issue.link}) names neither a test nor a signature",
                field=f"issue[{number - 1}]",
                hint='add test = "path::test_name" or signature = "a regex over the failure"',
            )
    return KnownIssues(tuple(data.issue), data.looks_fixed_after, path)
