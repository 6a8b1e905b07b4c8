"""Label-free model selection (emodna_jax/workflows/selection.py): grid parsing, the choice, resume, the rank
correlation table, and a whole selection through the real trainer on tiny in-memory corpora where one
grid point cannot learn."""

import functools
import json
import os
import shutil

import numpy as np
import pytest

from emodna_jax.audio import input_pipeline, labels
from emodna_jax.eval import validators
from emodna_jax.train import config_checks
from emodna_jax.workflows import selection
from tests import helpers


def read_json(path):
    with open(path) as f:
        return json.load(f)


# ---- grid, choice, correlation: pure pieces ---------------------------------------------------

def test_parse_grid_is_the_typed_cartesian_product():
    c = helpers.tiny_config()
    points = selection.parse_grid("loss.decoupling_weight=0.03,0.1; pseudo.tau_min=0.5,0.7;plots=false", c)
    assert points == [
        {"loss.decoupling_weight": 0.03, "pseudo.tau_min": 0.5, "plots": False},
        {"loss.decoupling_weight": 0.03, "pseudo.tau_min": 0.7, "plots": False},
        {"loss.decoupling_weight": 0.1, "pseudo.tau_min": 0.5, "plots": False},
        {"loss.decoupling_weight": 0.1, "pseudo.tau_min": 0.7, "plots": False}]
    assert selection.parse_grid("num_steps=3,5", c) == [{"num_steps": 3}, {"num_steps": 5}]
    run = selection.point_config(c, points[1])
    assert run.pseudo.tau_min == 0.7 and run.select.grid == "" and c.pseudo.tau_min != 0.7


@pytest.mark.parametrize("grid, message", [
    ("loss.decoupling_wieght=0.1", "not a config field"),
    ("num_steps=1.5", "not a int"),
    ("plots=maybe", "not a bool"),
    ("loss=1", "a group of fields"),
    ("select.validator=snd", "field of the selection"),
    ("seed=1;seed=2", "twice"),
    ("seed", "FIELD=V1,V2"),
])
def test_bad_grids_are_refused_with_the_field_named(grid, message):
    with pytest.raises(config_checks.ConfigError, match=message):
        selection.parse_grid(grid, helpers.tiny_config())


def test_check_selection_refuses_what_cannot_work():
    c = helpers.tiny_config()
    c.select.grid = "seed=0,1"
    c.select.validator = "dev"
    c.source_val_speakers = c.select.val_speakers = ""
    with pytest.raises(config_checks.ConfigError, match="val_speakers and config.source_val_speakers are empty"):
        selection.check_selection(c)
    c.select.validator = "accuracy"
    with pytest.raises(config_checks.ConfigError, match="unknown"):
        selection.check_selection(c)
    c.select.validator = "snd"  # target-only: no held-out speakers needed
    assert len(selection.check_selection(c)) == 2
    c.select.grid = "learning_rate=0.001,0.0"  # the second point is refused before the first trains
    with pytest.raises(config_checks.ConfigError, match="grid point learning_rate=0.0: .*learning_rate"):
        selection.check_selection(c)


def test_choose_takes_the_highest_finite_value_first_on_ties():
    scores = [{"dev": -2.0}, {"dev": float("nan")}, {"dev": -1.0}, {"dev": -1.0}, {"dev": None}]
    assert selection.choose(scores, "dev") == 2
    with pytest.raises(ValueError, match="no finite value"):
        selection.choose([{"dev": None}], "dev")


def test_spearman_by_hand():
    assert selection.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert selection.spearman([1, 2, 3], [3, 1, 2]) == pytest.approx(-0.5)  # ranks (2,0,1): 1 - 6*6/24
    # ties get their average rank: ranks (0.5, 0.5, 2) against (0, 1, 2)
    assert selection.spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(np.corrcoef([0.5, 0.5, 2], [0, 1, 2])[0, 1])
    assert selection.spearman([1, 1], [1, 2]) is None and selection.spearman([1], [2]) is None


def test_rank_correlations_over_selection_files(tmp_path):
    def write(name, values, uars):
        path = str(tmp_path / name)
        points = [{"validators": {"dev": v, "snd": None}, "target_uar": u} for v, u in zip(values, uars)]
        with open(path, "w") as f:
            json.dump({"points": points}, f)
        return path
    a = write("a.json", [1.0, 2.0, 3.0], [30.0, 40.0, 50.0])  # rho +1
    b = write("b.json", [1.0, 2.0, 3.0], [50.0, 30.0, 40.0])  # ranks (2, 0, 1): rho -0.5
    table = selection.rank_correlations([a, b])
    assert table["dev"]["per_selection"] == {a: pytest.approx(1.0), b: pytest.approx(-0.5)}
    assert table["dev"]["mean"] == pytest.approx(0.25) and table["dev"]["count"] == 2
    assert table["snd"]["mean"] is None and table["snd"]["count"] == 0


# ---- the loop with a stand-in trainer: choice, records, resume --------------------------------

def fake_trainer(calls, fail_on=None):
    """Writes config.json and results.json as the trainer does; its 'uar' comes from the settings."""
    def train(config, workdir):
        calls.append(workdir)
        if fail_on is not None and os.path.basename(workdir) == fail_on:
            raise RuntimeError("interrupted")
        os.makedirs(workdir, exist_ok=True)
        from emodna_jax.train import run_logging
        run_logging.write_json(os.path.join(workdir, "config.json"), config.to_dict())
        run_logging.write_json(os.path.join(workdir, "results.json"),
                               {"uar": 100 * config.loss.decoupling_weight, "method": config.method})
    return train


def fake_scores(workdir):
    """dev prefers a decoupling weight of 0.3 (read back from the point's config), snd prefers 0.1."""
    weight = read_json(os.path.join(workdir, "config.json"))["loss"]["decoupling_weight"]
    return {**{name: 0.0 for name in validators.VALIDATORS},
            "dev": -abs(weight - 0.3), "snd": -abs(weight - 0.1)}


def selection_config(grid="loss.decoupling_weight=0.1,0.3,0.5", validator="dev", refit=False):
    c = helpers.tiny_config()
    c.select.grid, c.select.validator, c.select.val_speakers, c.select.refit = grid, validator, "s3", refit
    return c


def test_points_hold_out_the_selection_speakers_and_the_refit_trains_on_the_whole_source(tmp_path):
    calls, configs = [], {}

    def train(config, workdir):
        configs[os.path.basename(workdir)] = config
        fake_trainer(calls)(config, workdir)

    selection.select_and_train(selection_config(refit=True), str(tmp_path), train_fn=train,
                               score_fn=fake_scores)
    assert [os.path.basename(p) for p in calls] == [
        "loss.decoupling_weight=0.1", "loss.decoupling_weight=0.3", "loss.decoupling_weight=0.5", "refit"]
    assert {c.source_val_speakers for n, c in configs.items() if n != "refit"} == {"s3"}
    refit = configs["refit"]
    assert refit.source_val_speakers == "" and refit.loss.decoupling_weight == 0.3 and refit.select.grid == ""
    results = read_json(tmp_path / "results.json")
    assert results["selected"]["workdir"] == str(tmp_path / "refit") and results["selected"]["refit"]
    assert read_json(tmp_path / "selection.json")["refit"] == str(tmp_path / "refit")
    calls.clear()  # started again: the refit is reused too
    selection.select_and_train(selection_config(refit=True), str(tmp_path), train_fn=train,
                               score_fn=fake_scores)
    assert calls == []


def test_selection_records_every_point_and_keeps_the_validators_choice(tmp_path):
    calls = []
    record = selection.select_and_train(selection_config(), str(tmp_path), train_fn=fake_trainer(calls),
                                        score_fn=fake_scores)
    assert len(calls) == 3
    assert record["chosen"] == "loss.decoupling_weight=0.3"
    saved = read_json(tmp_path / "selection.json")
    assert saved["chosen"] == record["chosen"] and saved["chosen_settings"] == {"loss.decoupling_weight": 0.3}
    assert [p["target_uar"] for p in saved["points"]] == pytest.approx([10.0, 30.0, 50.0])  # monitor only
    assert all(set(p["validators"]) == set(validators.VALIDATORS) for p in saved["points"])
    results = read_json(tmp_path / "results.json")
    assert results["uar"] == pytest.approx(30.0)  # the chosen run's, not the best target UAR (50)
    assert results["selected"]["point"] == "loss.decoupling_weight=0.3"
    assert results["selected"]["value"] == pytest.approx(0.0)
    # another validator, same runs (all reused): its own preference
    record = selection.select_and_train(selection_config(validator="snd"), str(tmp_path),
                                        train_fn=fake_trainer(calls), score_fn=fake_scores)
    assert record["chosen"] == "loss.decoupling_weight=0.1" and len(calls) == 3


def test_an_interrupted_selection_reuses_its_finished_points(tmp_path):
    calls = []
    with pytest.raises(RuntimeError, match="interrupted"):
        selection.select_and_train(selection_config(), str(tmp_path),
                                   train_fn=fake_trainer(calls, fail_on="loss.decoupling_weight=0.3"),
                                   score_fn=fake_scores)
    assert [os.path.basename(p) for p in calls] == ["loss.decoupling_weight=0.1", "loss.decoupling_weight=0.3"]
    calls.clear()
    record = selection.select_and_train(selection_config(), str(tmp_path), train_fn=fake_trainer(calls),
                                        score_fn=fake_scores)
    assert [os.path.basename(p) for p in calls] == ["loss.decoupling_weight=0.3", "loss.decoupling_weight=0.5"]
    assert record["chosen"] == "loss.decoupling_weight=0.3"


def test_a_point_folder_of_another_config_is_not_reused(tmp_path):
    selection.select_and_train(selection_config(), str(tmp_path), train_fn=fake_trainer([]),
                               score_fn=fake_scores)
    other = selection_config()
    other.seed = 7
    with pytest.raises(config_checks.ConfigError, match="seed"):
        selection.select_and_train(other, str(tmp_path), train_fn=fake_trainer([]), score_fn=fake_scores)


# ---- the real trainer on tiny in-memory corpora -------------------------------------------------

CLASSES = ("angry", "happy", "sad")
SHAPE = (16, 5)


def corpus(name, n, *, seed, shift, speakers):
    """A corpus whose class is the mean of coefficient 0 (easy to learn), shifted in the others."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    x = rng.normal(size=(n,) + SHAPE).astype(np.float32)
    x[:, :, 0] += 2.0 * (y[:, None] - 1)
    x[:, :, 1:] += shift
    return input_pipeline.CorpusArrays(
        name, x, np.array([labels.LABEL_NAMES.index(CLASSES[k]) for k in y], np.int64),
        np.array([speakers[(i // len(CLASSES)) % len(speakers)] for i in range(n)], object),  # every class
        np.array([f"{name}/{i}.wav" for i in range(n)], object))


@pytest.fixture
def in_memory_corpora(monkeypatch):
    """trainer.setup and inference.load_run read these corpora instead of TFDS; returns a dict whose
    "target" entry a test may replace (e.g. with permuted labels)."""
    data = {"synthetic_a": corpus("synthetic_a", 72, seed=0, shift=0.0, speakers=("s1", "s2", "s3")),
            "synthetic_b": corpus("synthetic_b", 48, seed=1, shift=0.5, speakers=("t1", "t2"))}
    original = input_pipeline.create_task_data
    monkeypatch.setattr(input_pipeline, "create_task_data", functools.partial(
        original, load_fn=lambda name, config, split: data[name]))
    return data


# The grid's points share shapes: the session's persistent compilation cache (tests/fixtures_data.py)
# lets later compilations reuse earlier ones.
pytestmark = pytest.mark.usefixtures("compilation_cache")


def real_config(validator="source_uar"):
    c = helpers.tiny_config("source_only", source="synthetic_a", target="synthetic_b",
                            classes=",".join(CLASSES), normalization="corpus",
                            batch_size=8, eval_batch_size=16, num_steps=16, checkpoint_every=8,
                            log_every=8, plots=False, num_devices=1, **{"model.backbone": "linear"})
    # one point cannot learn in 16 steps (learning rate 1e-9), the other can; the linear backbone
    # (through the same trainer) keeps the compilations short
    c.select.grid, c.select.validator = "learning_rate=1e-09,0.02", validator
    c.select.val_speakers, c.select.refit = "s3", False
    return c


def test_selection_through_the_trainer_picks_the_point_that_learns(tmp_path, in_memory_corpora):
    workdir = str(tmp_path / "a")
    record = selection.select_and_train(real_config(), workdir)
    points = {p["point"]: p for p in record["points"]}
    learns, frozen = points["learning_rate=0.02"], points["learning_rate=1e-09"]
    assert record["chosen"] == "learning_rate=0.02"
    # the choice is the arg-max of the declared validator, and the better point by the source risks
    assert learns["validators"]["source_uar"] > frozen["validators"]["source_uar"] + 20
    assert learns["validators"]["source_neg_ce"] > frozen["validators"]["source_neg_ce"]
    assert learns["validators"]["dev"] > frozen["validators"]["dev"]
    assert learns["target_uar"] > frozen["target_uar"]
    results = read_json(os.path.join(workdir, "results.json"))
    assert results["selected"]["point"] == "learning_rate=0.02"
    assert results["uar"] == learns["target_uar"]
    assert os.path.isdir(os.path.join(workdir, "grid", "learning_rate=0.02", "checkpoints"))

    # finished: started again, nothing is trained or scored again
    def no_training(config, folder):
        raise AssertionError(f"{folder} was trained again")
    again = selection.select_and_train(real_config(), workdir, train_fn=no_training,
                                       score_fn=lambda folder: pytest.fail("scored again"))
    assert again["points"] == record["points"]

    # target labels never reach the choice: the same checkpoints rescored against a target whose
    # labels are permuted give the same validator values, hence the same choice
    target = in_memory_corpora["synthetic_b"]
    permuted = np.random.default_rng(5).permutation(target.labels)
    assert np.any(permuted != target.labels)
    in_memory_corpora["synthetic_b"] = input_pipeline.CorpusArrays(
        target.name, target.features, permuted, target.speakers, target.files)
    workdir_b = str(tmp_path / "b")
    shutil.copytree(os.path.join(workdir, "grid"), os.path.join(workdir_b, "grid"))
    for name in points:
        os.remove(os.path.join(workdir_b, "grid", name, "scores.json"))
    other = selection.select_and_train(real_config(), workdir_b, train_fn=no_training)
    assert other["chosen"] == record["chosen"]
    for p, q in zip(record["points"], other["points"]):
        for name in validators.VALIDATORS:
            assert q["validators"][name] == pytest.approx(p["validators"][name], rel=1e-9, abs=1e-12), name


def test_format_rank_table_lists_every_validator():
    table = {name: {"mean": None, "count": 0} for name in validators.VALIDATORS}
    table["dev"] = {"mean": 0.25, "count": 2}
    text = selection.format_rank_table(table)
    assert "| dev | +0.25 | 2 |" in text and "| snd | n/a | 0 |" in text
    assert len(text.splitlines()) == 2 + len(validators.VALIDATORS)
