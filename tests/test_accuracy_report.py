"""The accuracy benchmark's report: paired differences and last-step monitors (pure Python, no runs)."""

import json

from benchmarks import accuracy_benchmark as bench


def run(task, seed, uar, **monitors):
    return {"task": task, "seed": seed, "uar": uar, "train_monitors": monitors,
            "label_free": {"snd": 1.0, "mean_prediction_entropy": 1.0, "prediction_histogram": [0.5, 0.5]}}


def test_paired_table_pairs_by_task_and_seed_only():
    runs = {("c2b", "source_only"): [run("c2b", 0, 30.0), run("c2b", 1, 32.0)],
            ("c2e", "source_only"): [run("c2e", 0, 20.0)],
            ("c2b", "emodna"): [run("c2b", 0, 33.0), run("c2b", 1, 31.0), run("c2b", 2, 50.0)],  # seed 2 unpaired
            ("c2e", "emodna"): [run("c2e", 0, 26.0)]}
    lines = bench.paired_table(runs, ["c2b", "c2e"], ["emodna"], "source_only")
    # differences +3, -1, +6: mean 2.67, sample std 3.51, two pairs above
    assert lines[-1] == "| emodna | 3 | 2.7 ± 3.5 | 2 |"


def test_ablation_table_pairs_each_ablation_with_the_full_method_for_both_inferences():
    def with_centroid(task, seed, uar, centroid):
        return {**run(task, seed, uar), "centroid_uar": centroid}

    runs = {("c2b", "emodna"): [with_centroid("c2b", 0, 30.0, 34.0), with_centroid("c2b", 1, 32.0, 33.0)],
            ("c2b", "emodna_no_decoupling"): [with_centroid("c2b", 0, 28.0, 35.0),
                                              run("c2b", 1, 31.0)],  # no centroid record: head pair only
            ("c2b", "source_only"): [run("c2b", 0, 99.0)]}  # not the reference here
    lines = bench.ablation_table(runs, ["c2b"], ["emodna_no_decoupling", "emodna_no_class_align"])
    assert len(lines) == 3  # the ablation without runs gets no row
    # head: -2, -1 -> -1.5 ± 0.7, none above; centroid: +1 over one pair, above
    assert lines[-1] == "| emodna_no_decoupling | 2 | -1.5 ± 0.7 (pairs=2) | 0 | 1.0 (pairs=1) | 1 |"


def test_diagnostics_table_reports_monitors_only_from_runs_that_have_them():
    runs = {("c2b", "emodna"): [run("c2b", 0, 30.0, **{"loss/cls": 1.0, "pseudo/confident_fraction": 0.2}),
                                run("c2b", 1, 30.0, **{"loss/cls": 0.5})],
            ("c2b", "source_only"): [run("c2b", 0, 30.0)]}
    lines = bench.diagnostics_table(runs, ["emodna", "source_only"])
    assert lines[2].endswith("| 0.75 | 0.20 (n=1) |")
    assert lines[3].endswith("| - | - |")


def test_report_adds_a_centroid_table_for_the_runs_that_record_it(tmp_path):
    def write(task, method, seed, uar, centroid=None):
        folder = tmp_path / task / method / f"seed{seed}"
        folder.mkdir(parents=True)
        result = {**run(task, seed, uar), "war": uar, "method": method}
        if centroid is not None:
            result["centroid"] = {"uar": centroid}
        (folder / "results.json").write_text(json.dumps(result))

    write("c2b", "source_only", 0, 30.0)
    write("c2b", "emodna", 0, 31.0, centroid=35.0)
    write("c2b", "emodna", 1, 33.0)  # older run: no centroid field
    text = bench.report(str(tmp_path), ["c2b"], ["source_only", "emodna"], "cmd")
    centroid_part = text.split("labelled by its own class centroids")[1].split("\n\n")[1]
    assert "| emodna | 35.0 (n=1) | 35.0 (n=1) |" in centroid_part
    assert "source_only" not in centroid_part
    assert "| emodna | 32.0 ± 1.4 (n=2) |" in text  # the head's table keeps every run


def test_mean_std_prints_a_mean_that_rounds_to_zero_without_a_sign():
    assert bench.mean_std([-0.4, 0.3, 0.0]) == "0.0 ± 0.4"
    assert bench.mean_std([-0.06, -0.05, -0.07]) == "-0.1 ± 0.0"
    assert bench.mean_std([-0.04]) == "0.0 (n=1)"
    assert bench.mean_std([-0.04, -0.04]) == "0.0 ± 0.0 (n=2)"  # the spread is around the true mean
