"""The benchmark scripts run and print their tables (their figures are read by people, not asserted)."""

import re

from conftest import run_script


def test_pipeline_benchmark_prints_a_row_per_pipeline_and_frame(default_model):
    result = run_script("benchmarks/bench_pipeline.py", "--model", default_model, "--detect-size", 640,
                        "--rounds", 1, "--frames", 2)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if re.match(r"\| (classic|this project)", line)]
    assert len(rows) == 4
    faces = [int(row.split("|")[3]) for row in rows]
    assert faces == [1, 1, 9, 9]  # both pipelines find every face of both frames
