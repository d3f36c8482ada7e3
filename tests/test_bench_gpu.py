"""benchmarks/bench_gpu.py in its tiny CPU form: the JSON it prints has every measurement's keys
and sane values, then one summary line; as a real process it needs neither pydantic, numpy nor
ray (the GPU machine has only torch) and its packed trials run as separate processes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
SETTINGS = ("eager-fp32", "eager-bf16", "eager-bf16-cl", "compiled-bf16-cl")
MEASURED = {"sgd_img_s", "sam_img_s", "sgd_step_s", "sam_step_s", "sam_over_sgd"}


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_report(report: dict, models: set[str], steps: int) -> None:
    assert report["tiny"] and report["batch_size"] == 8 and report["device"]["device"] == "cpu"
    assert set(report["models"]) == models
    for model in report["models"].values():
        assert set(model["settings"]) == set(SETTINGS)
        assert "skipped" in model["settings"]["compiled-bf16-cl"]  # no compile in --tiny
        for name in SETTINGS[:3]:
            got = model["settings"][name]
            assert set(got) >= MEASURED, got
            assert got["sgd_img_s"] == pytest.approx(8 / got["sgd_step_s"])
            assert got["sam_over_sgd"] == pytest.approx(got["sam_step_s"] / got["sgd_step_s"])
            assert got["peak_memory_bytes"] > 0
        rst = model["settings"]["eager-bf16-cl"]["rst"]
        assert rst["steps"] == 2 * steps and 0 < rst["realized_extra"] < 1
        assert {"extra_over_sgd_x_deta", "linearity", "time_s"} <= set(rst)
    assert set(report["goals"]) == {
        "resnet18_sgd_bf16_img_s",
        "sam_over_sgd_max",
        "compiled_over_eager_min",
        "packed4_over_1_min",
    }
    assert all(goal["met"] is None for goal in report["goals"].values())  # never judged on --tiny


def test_tiny_bench_reports_every_measurement(capsys):
    report = load_bench().main(["--tiny", "--packs", "", "--only", "resnet18", "--steps", "2"])
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads("\n".join(out[:-1])) == json.loads(json.dumps(report))
    assert out[-1].startswith("bench_gpu on ") and "(tiny)" in out[-1]
    check_report(report, {"resnet18"}, steps=2)
    assert report["packing"]["trials"] == {} and report["packing"]["packed4_over_1"] is None


@pytest.mark.slow
def test_tiny_bench_as_a_process_without_pydantic_numpy_or_ray(tmp_path):
    blocker = tmp_path / "sitecustomize.py"  # make those imports fail in the bench process
    blocker.write_text(
        "import sys\nfor m in ('pydantic', 'numpy', 'ray'):\n    sys.modules[m] = None\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT / 'src'}", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin"}
    argv = [sys.executable, str(SCRIPT), "--tiny", "--packs", "1,2", "--out", tmp_path / "b.json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "b.json").read_text())
    check_report(report, {"resnet18", "wrn-10-1"}, steps=3)
    trials = report["packing"]["trials"]
    assert set(trials) == {"1", "2"} and len(trials["2"]["per_trial_img_s"]) == 2
    assert trials["2"]["memory_fraction"] == 0.5 and trials["1"]["aggregate_img_s"] > 0
