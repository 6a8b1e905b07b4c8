"""benchmarks/combined_table.py: rows from several benchmark folders, paired by task and seed."""


import pytest

from benchmarks import combined_table
from tests import helpers


def test_rows_from_two_folders_are_paired_by_task_and_seed(tmp_path):
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    for seed, (a, b) in enumerate([(40.0, 44.0), (42.0, 43.0), (50.0, 49.0)]):
        helpers.write_results(old, "c2b", "source_only", seed, a)
        helpers.write_results(new, "c2b", "renamed", seed, b)  # the method ran under another name in its folder
    rows = [combined_table.read_row(f"source_only:{old}", ("c2b",)),
            combined_table.read_row(f"emodna:{new}:renamed", ("c2b",))]
    table = combined_table.table(rows, ["source_only"], ("c2b",)).splitlines()
    assert table[0] == "| method | C->B | mean of tasks | minus source_only |"
    # differences +4, +1, -1: mean +1.3, sample std 2.5, two of three above
    assert table[3] == "| `emodna` | 45.3 ± 3.2 | 45.3 ± 3.2 | +1.3 ± 2.5 (2/3) |"
    assert table[2].endswith("| - |")


def test_a_row_without_runs_and_an_unknown_pairing_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="no results.json"):
        combined_table.read_row(f"emodna:{tmp_path}", ("c2b",))
    helpers.write_results(str(tmp_path), "c2b", "emodna", 0, 50.0)
    rows = [combined_table.read_row(f"emodna:{tmp_path}", ("c2b",))]
    with pytest.raises(SystemExit, match="--paired=adabn"):
        combined_table.table(rows, ["adabn"], ("c2b",))
