"""benchmarks/selection_report.py on hand-made selection.json and results.json files."""

import json
import os

import pytest

from benchmarks import selection_report
from emodna_jax.eval import validators


def point(name, uar, dev, snd):
    values = {v: 0.0 for v in validators.VALIDATORS}
    values.update(dev=dev, snd=snd)
    return {"point": name, "validators": values, "target_uar": uar}


def write_selection(root, task, method, seed, points, chosen):
    folder = os.path.join(root, task, method, f"seed{seed}")
    os.makedirs(folder)
    with open(os.path.join(folder, "selection.json"), "w") as f:
        json.dump({"validator": "dev", "grid": "w=1,2,3", "chosen": chosen, "points": points}, f)


def test_regret_is_the_uar_lost_against_the_grids_best_point():
    points = [point("a", 40.0, dev=-1.0, snd=3.0), point("b", 45.0, dev=-2.0, snd=1.0),
              point("c", 42.0, dev=-0.5, snd=2.0)]
    assert selection_report.regret(points, "dev") == pytest.approx(3.0)  # dev picks c (42) of best 45
    assert selection_report.regret(points, "snd") == pytest.approx(5.0)  # snd picks a (40)
    points[1]["target_uar"] = None
    assert selection_report.regret(points, "dev") is None


def test_tables_count_choices_and_rank_validators(tmp_path):
    good = [point("w=1", 40.0, dev=1.0, snd=3.0), point("w=2", 45.0, dev=2.0, snd=2.0),
            point("w=3", 50.0, dev=3.0, snd=1.0)]
    write_selection(tmp_path, "c2b", "mmd", 0, good, "w=3")
    write_selection(tmp_path, "c2e", "mmd", 0, good, "w=3")
    write_selection(tmp_path, "c2b", "dann", 0, good, "w=1")
    write_selection(tmp_path, "c2b", "other", 0, good, "w=1")  # not asked for
    files = selection_report.selection_files(str(tmp_path), ["mmd", "dann"])
    assert sorted(files) == ["dann", "mmd"] and len(files["mmd"]) == 2
    chosen = "\n".join(selection_report.chosen_table(files))
    assert "| mmd | dev | `w=1,2,3` | `w=3` 2 |" in chosen and "| dann | dev | `w=1,2,3` | `w=1` 1 |" in chosen
    ranks = "\n".join(selection_report.validator_table(files))
    assert "| dev | +1.00 | 3 | 0.00 |" in ranks  # dev ranks the points as the target UAR does
    assert "| snd | -1.00 | 3 | 10.00 |" in ranks  # snd ranks them backwards: it picks 40 of 50


def test_pseudo_label_table_reports_share_precision_and_the_smallest_share():
    runs = {("c2b", "emodna"): [{"confident_share_run": 0.4, "pseudo_label_precision_run": 50.0},
                                {"confident_share_run": 0.2, "pseudo_label_precision_run": 70.0}],
            ("c2b", "source_only"): [{"confident_share_run": None}]}
    lines = selection_report.pseudo_label_table(runs, ["c2b"], ["emodna", "source_only"], str.upper)
    assert lines[2] == "| emodna | 30 % / 60 % (min 20 %) |" and len(lines) == 3
