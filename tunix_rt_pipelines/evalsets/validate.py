"""Validate an eval set file: every problem with its line number, plus statistics.

Errors (non-zero exit): unreadable or invalid JSON lines, schema violations, duplicate
item ids, duplicate prompts, an empty file. Warnings: section shares more than five
points away from the 60/25/15 target.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tunix_rt_pipelines.evalsets.schema import SECTIONS, TARGET_SHARES, EvalItem
from tunix_rt_pipelines.traces.schema import describe_validation_error, lone_surrogate_path


@dataclass
class EvalSetReport:
    path: str
    sha256: str
    items: list[EvalItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: field: message"
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def stats(self) -> dict:
        n = len(self.items)
        sections = Counter(i.section for i in self.items)
        return {
            "file": self.path,
            "sha256": self.sha256,
            "items": n,
            "sections": {s: sections.get(s, 0) for s in SECTIONS},
            "section_shares": {s: round(sections.get(s, 0) / n, 3) if n else 0.0 for s in SECTIONS},
            "categories": dict(sorted(Counter(i.category for i in self.items).items())),
            "difficulties": dict(sorted(Counter(i.difficulty for i in self.items).items())),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


def load_evalset(path: Path) -> list[EvalItem]:
    """The items of a valid eval set; a ValueError listing the first line-numbered errors otherwise."""
    report = validate_evalset(path)
    if not report.ok:
        raise ValueError(f"{path} is not a valid eval set: " + "; ".join(report.errors[:5]))
    return report.items


def validate_evalset(path: Path) -> EvalSetReport:
    data = path.read_bytes()
    report = EvalSetReport(path=str(path), sha256=hashlib.sha256(data).hexdigest())
    name = path.name
    first_line_of_id: dict[str, int] = {}
    first_line_of_prompt: dict[str, int] = {}
    for line_no, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            report.errors.append(f"{name}:{line_no}: <record>: not valid UTF-8 at byte {e.start}")
            continue
        except json.JSONDecodeError as e:
            report.errors.append(f"{name}:{line_no}: <record>: invalid JSON at column {e.colno}: {e.msg}")
            continue
        except (ValueError, RecursionError) as e:  # beyond Python's json limits: nesting depth, integer digits
            report.errors.append(f"{name}:{line_no}: <record>: JSON beyond the parser's limits: {e}")
            continue
        if (where := lone_surrogate_path(obj)) is not None:
            report.errors.append(f"{name}:{line_no}: {where}: holds an escaped lone surrogate, which is not Unicode text")
            continue
        try:
            item = EvalItem.model_validate(obj)
        except ValidationError as e:
            fld, msg = describe_validation_error(e)
            report.errors.append(f"{name}:{line_no}: {fld}: {msg}")
            continue
        if item.item_id in first_line_of_id:
            report.errors.append(
                f"{name}:{line_no}: item_id: duplicate {item.item_id!r} (first on line {first_line_of_id[item.item_id]})"
            )
            continue
        if item.prompt in first_line_of_prompt:
            report.errors.append(
                f"{name}:{line_no}: prompt: same prompt as line {first_line_of_prompt[item.prompt]}"
            )
            continue
        first_line_of_id[item.item_id] = line_no
        first_line_of_prompt[item.prompt] = line_no
        report.items.append(item)
    if not report.items and not report.errors:
        report.errors.append(f"{name}: the file holds no items")
    n = len(report.items)
    if n:
        counts = Counter(i.section for i in report.items)
        for section, target in TARGET_SHARES.items():
            share = counts.get(section, 0) / n
            if abs(share - target) > 0.05:
                report.warnings.append(
                    f"{name}: section {section!r} is {share:.0%} of items; the target is {target:.0%}"
                )
    return report
