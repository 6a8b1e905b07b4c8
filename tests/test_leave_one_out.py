"""Leave-one-corpus-out tasks: several source letters (configs/cross_corpus.py), each source's own
held-out speakers for selection (input_pipeline.auto_val_speakers), and the table that sets them
beside the single-source tasks (benchmarks/loco_table.py)."""

import os

import numpy as np
import pytest

from benchmarks import loco_table
from configs import cross_corpus
from emodna_jax.audio import input_pipeline
from tests import helpers


def test_several_source_letters_pool_corpora_and_bad_tasks_are_refused():
    assert cross_corpus.parse_task("ce2b") == ("casia,emovo", "emodb")
    assert cross_corpus.parse_task("be2c") == ("emodb,emovo", "casia")
    config = cross_corpus.get_config("bc2e,source_only")
    assert (config.source, config.target, config.task) == ("emodb,casia", "emovo", "bc2e")
    for bad in ("cb2b", "cc2b", "c2be", "cx2b", "2b"):
        with pytest.raises(ValueError, match="SOURCE2TARGET"):
            cross_corpus.parse_task(bad)


def test_pooled_sources_hold_out_each_corpus_own_speakers():
    speakers = np.array(["casia/wangzhe", "casia/liuchanhg", "emovo/f1", "emovo/m1", "emovo/f2"], dtype=object)
    held = input_pipeline.auto_val_speakers("casia,emovo", speakers)
    assert held == ["casia/wangzhe", "emovo/f1", "emovo/m1"]
    assert input_pipeline.auto_val_speakers("casia", ["wangzhe", "zhaoquanyin"]) == ["wangzhe"]


def test_loco_table_sets_both_sources_beside_the_better_single_one(tmp_path):
    single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
    for seed, (c2b, e2b, ce2b) in enumerate([(40.0, 60.0, 61.0), (42.0, 62.0, 65.0)]):
        helpers.write_results(single, "c2b", "source_only", seed, c2b)
        helpers.write_results(single, "e2b", "source_only", seed, e2b)
        helpers.write_results(multi, "ce2b", "source_only", seed, ce2b)
    # a selection's grid point is not a seed of its own
    helpers.write_results(os.path.join(multi, "ce2b", "source_only", "seed0", "grid"), "x", "y", 0, 0.0)
    text = loco_table.table(single, [("per_corpus", multi)], ["source_only"])
    row = next(line for line in text.splitlines() if line.startswith("| CE->B"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "c2b: 41.0 ± 1.4" and cells[3] == "e2b: 61.0 ± 1.4"
    assert cells[4] == "63.0 ± 2.8" and cells[5] == "+2.0"  # 63.0 against the better single source, 61.0
    assert all(line.count("|") == text.splitlines()[0].count("|") for line in text.splitlines())
