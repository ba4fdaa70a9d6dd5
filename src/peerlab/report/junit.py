"""JUnit XML for one run, the format every CI system shows as test results."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def junit_xml(result: dict[str, Any]) -> str:
    """One <testsuite> with one <testcase> for a run's result.json."""
    name = str(result.get("test") or result.get("run") or "run")
    classname, _, short = name.rpartition("::")
    failed = result.get("outcome") == "failed"
    bad = [v for v in result.get("verdicts", []) if v.get("valid") == "invalid"]
    suite = ET.Element(
        "testsuite",
        {
            "name": "peerlab",
            "tests": "1",
            "failures": "1" if failed else "0",
            "errors": "0",
            "skipped": "1" if result.get("outcome") == "skipped" else "0",
            "time": f"{float(result.get('seconds') or 0):.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for key in ("seed", "replay"):
        if result.get(key) is not None:
            ET.SubElement(
                properties, "property", {"name": f"peerlab.{key}", "value": str(result[key])}
            )
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": (classname or "peerlab").replace("/", ".").removesuffix(".py"),
            "name": short or name,
            "time": f"{float(result.get('seconds') or 0):.3f}",
        },
    )
    if failed:
        failure = result.get("failure") or {}
        message = failure.get("message") or (bad[0]["summary"] if bad else "failed")
        element = ET.SubElement(
            case, "failure", {"message": message.splitlines()[0][:500] if message else "failed"}
        )
        lines = [failure.get("text") or message]
        lines += [f"{v['checker']}: {v['summary']}" for v in bad]
        lines.append(f"seed {result.get('seed')}; replay: {result.get('replay')}")
        element.text = "\n".join(line for line in lines if line)
    elif result.get("outcome") == "skipped":
        ET.SubElement(case, "skipped")
    out = ET.SubElement(case, "system-out")
    out.text = f"peerlab results: {result.get('path', '')}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(result: dict[str, Any], path: Path) -> Path:
    path.write_text(junit_xml(result), encoding="utf-8")
    return path
