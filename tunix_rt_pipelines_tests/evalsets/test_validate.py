import json

import pytest
from click.testing import CliRunner

from tunix_rt_pipelines.cli import main
from tunix_rt_pipelines.core.settings import REPO_ROOT
from tunix_rt_pipelines.evalsets.build import SHIPPED, build_eval_v1, render
from tunix_rt_pipelines.evalsets.validate import load_evalset, validate_evalset
from tunix_rt_pipelines.synthetic.dev_set import build_dev_set


def item(i, **kw):
    base = {"item_id": f"e:{i}", "prompt": f"What is {i}+1?", "expected_answer": str(i + 1),
            "section": "core", "category": "arithmetic", "difficulty": "easy"}
    return json.dumps({**base, **kw})


def test_shipped_eval_set_is_valid_with_the_60_25_15_split():
    report = validate_evalset(REPO_ROOT / "evalsets" / "eval_v1.jsonl")
    assert report.ok and not report.warnings
    assert report.stats()["sections"] == {"core": 60, "trace_sensitive": 25, "edge_case": 15}


def test_shipped_eval_set_is_reproducible_and_unseen_in_training():
    assert SHIPPED.read_text(encoding="utf-8") == render(build_eval_v1())
    train_prompts = {t.prompt for t in build_dev_set()}
    assert not train_prompts & {i.prompt for i in build_eval_v1()}


def test_errors_carry_line_numbers_and_fields(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([item(1), "{oops", item(2, section="misc"), item(1)]) + "\n")
    report = validate_evalset(path)
    assert report.errors == [
        "bad.jsonl:2: <record>: invalid JSON at column 2: Expecting property name enclosed in double quotes",
        "bad.jsonl:3: section: Input should be 'core', 'trace_sensitive' or 'edge_case'",
        "bad.jsonl:4: item_id: duplicate 'e:1' (first on line 1)",
    ]


def test_cli_exits_non_zero_on_errors_and_zero_on_the_shipped_set(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(item(1) + "\n" + item(2, expected_answer="") + "\n")
    runner = CliRunner()
    failed = runner.invoke(main, ["evalset", "validate", str(bad)])
    assert failed.exit_code == 1 and "bad.jsonl:2: expected_answer" in failed.output
    ok = runner.invoke(main, ["evalset", "validate", str(REPO_ROOT / "evalsets" / "eval_v1.jsonl")])
    assert ok.exit_code == 0 and "core 60 (60%)" in ok.output


def test_loading_an_invalid_eval_set_names_its_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(item(1) + "\n" + item(2, section="nope") + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:2: section"):
        load_evalset(bad)
    assert len(load_evalset(REPO_ROOT / "evalsets" / "eval_v1.jsonl")) == 100


def test_hostile_lines_are_line_numbered_errors_not_crashes(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = ["[" * 100_000 + "]" * 100_000, item(2).replace('"difficulty"', '"n": ' + "9" * 5000 + ', "difficulty"'),
             item(3, prompt="p \ud800"), item(4, category="   "), item(5, extra=1), item(6)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    report = validate_evalset(path)
    assert [e.split(": ")[0:2] for e in report.errors] == [
        ["bad.jsonl:1", "<record>"], ["bad.jsonl:2", "<record>"], ["bad.jsonl:3", "prompt"],
        ["bad.jsonl:4", "category"], ["bad.jsonl:5", "extra"]]
    assert "not in the EvalItem schema" in report.errors[4] and len(report.items) == 1
