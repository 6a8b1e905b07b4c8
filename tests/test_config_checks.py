"""Every refusal of config_checks names the field to change; good configs pass; the tables it keeps
agree with the modules they mirror."""

import numpy as np
import pytest

from configs import cross_corpus, default
from emodna_jax.audio import labels
from emodna_jax.method import methods
from emodna_jax.train import config_checks
from emodna_jax.train.config_checks import ConfigError
from tests import helpers


def _config(**overrides):
    return helpers.set_fields(default.get_config("smoke"), overrides)


@pytest.mark.parametrize("name", ["default", "smoke"] + [f"c2b,{m}" for m in methods.METHODS])
def test_shipped_configs_pass(name):
    config = default.get_config("" if name == "default" else name) if "," not in name else \
        cross_corpus.get_config(name)
    config_checks.validate(config, num_devices=1)


def test_coral_is_mmd_with_coral_at_deep_corals_weight():
    """coral differs from mmd in the alignment, its weight and the weight's grid only (every other field
    equal); each grid spans its weight: a decade around Deep CORAL's rule, and 0.1-1 for MMD."""
    mmd, coral = (cross_corpus.get_config(f"c2b,{m}").to_dict() for m in ("mmd", "coral"))
    assert coral["loss"].pop("corpus_align_weight") == methods.DEEP_CORAL_WEIGHT > 1
    assert mmd["loss"].pop("corpus_align_weight") == 1.0
    assert (coral["loss"].pop("corpus_align"), mmd["loss"].pop("corpus_align")) == ("coral", "mmd")
    assert coral["select"].pop("grid") == "loss.corpus_align_weight=100.0,1000.0,10000.0"
    assert mmd["select"].pop("grid") == "loss.corpus_align_weight=0.1,0.3,1.0"
    for d in (mmd, coral):
        d.pop("method")
    assert coral == mmd


# (overrides, text the message must contain: the field, and what is wrong or what to do)
REFUSALS = [
    ({"method": "emodnaa"}, ["config.method='emodnaa'", "emodna"]),
    ({"backend": "pmapp"}, ["config.backend='pmapp'", "shard_map"]),
    ({"source": "emodbb"}, ["config.source='emodbb'", "unknown corpus", "folder:PATH"]),
    ({"target": "nowhere"}, ["config.target='nowhere'", "unknown corpus"]),
    ({"target": "folder:/no/such/folder"}, ["config.target='folder:/no/such/folder'", "no such folder"]),
    ({"classes": ""}, ["config.classes=''", "Empty class set"]),
    ({"classes": "angry,grumpy"}, ["config.classes='angry,grumpy'", "grumpy"]),
    ({"classes": "angry,angry"}, ["config.classes='angry,angry'", "more than once"]),
    ({"classes": "angry"}, ["config.classes='angry'", "at least two"]),
    ({"classes": "angry,sad,boredom"}, ["config.classes='angry,sad,boredom'", "config.source='synthetic_a'",
                                        "boredom", "--config.classes=angry,sad"]),
    ({"loss.temperature": 0.0}, ["config.loss.temperature=0.0", "> 0"]),
    ({"loss.temperature": -1.0}, ["config.loss.temperature=-1.0"]),
    ({"loss.label_smoothing": 1.0}, ["config.loss.label_smoothing=1.0"]),
    ({"loss.corpus_align": "wasserstein"}, ["config.loss.corpus_align='wasserstein'", "mmd"]),
    ({"loss.class_align": "magic"}, ["config.loss.class_align='magic'"]),
    ({"loss.decoupling_weight": -1.0}, ["config.loss.decoupling_weight=-1.0", ">= 0"]),
    ({"loss.consistency_weight": -0.5}, ["config.loss.consistency_weight=-0.5", ">= 0"]),
    ({"loss.mmd_bandwidths": ()}, ["config.loss.mmd_bandwidths"]),
    ({"pseudo.threshold": "adaptive"}, ["config.pseudo.threshold='adaptive'", "freematch"]),
    ({"pseudo.threshold": "none"}, ["config.pseudo.threshold", "class_align"]),
    ({"pseudo.teacher": "oracle"}, ["config.pseudo.teacher='oracle'"]),
    ({"pseudo.warmup_steps": 12}, ["config.pseudo.warmup_steps=12", "num_steps=12"]),
    ({"pseudo.tau_min": 1.5}, ["config.pseudo.tau_min=1.5"]),
    ({"pseudo.quantile_end": 0.1}, ["config.pseudo.quantile_start/quantile_end", "start <= end"]),
    # Thresholds no target example can pass: the pseudo-label parts would be present but inert.
    ({"pseudo.threshold": "freematch", "pseudo.tau_min": 1.0},
     ["config.pseudo.tau_min=1.0", "inert", "below 1", "pseudo.threshold='none'"]),
    ({"pseudo.threshold": "fixed", "pseudo.fixed_threshold": 1.0},
     ["config.pseudo.fixed_threshold=1.0", "'fixed'", "inert", "below 1"]),
    ({"pseudo.threshold": "flexmatch", "pseudo.fixed_threshold": 1.0},
     ["config.pseudo.fixed_threshold=1.0", "'flexmatch'", "inert"]),
    ({"loss.class_align": "none", "pseudo.threshold": "freematch", "pseudo.tau_min": 1.0},
     ["config.pseudo.tau_min=1.0", "inert"]),  # the decoupling consumes them
    ({"normalization": "global"}, ["config.normalization='global'", "corpus"]),
    ({"features": "mfcc40"}, ["config.features='mfcc40'", "mfcc39"]),
    ({"num_steps": 0}, ["config.num_steps=0"]),
    ({"batch_size": 0}, ["config.batch_size=0"]),
    ({"learning_rate": 0.0}, ["config.learning_rate=0.0"]),
    ({"lr_warmup_steps": 12}, ["config.lr_warmup_steps=12"]),
    ({"checkpoint_every": 0}, ["config.checkpoint_every=0"]),
    ({"prototype_momentum": 1.0}, ["config.prototype_momentum=1.0"]),
    ({"model.filters": 0}, ["config.model.filters=0"]),
    ({"model.dropout_rate": 1.0}, ["config.model.dropout_rate=1.0"]),
    ({"pseudo.threshold": "none", "loss.class_align": "none", "loss.decoupling_weight": 0.0,
      "pseudo.agreement": True},
     ["config.pseudo.agreement=True", "never makes"]),
    ({"pseudo.labeller": "kmeans"}, ["config.pseudo.labeller='kmeans'", "centroid"]),
    ({"pseudo.threshold": "none", "loss.class_align": "none", "loss.decoupling_weight": 0.0,
      "pseudo.labeller": "centroid"}, ["config.pseudo.labeller='centroid'", "never makes"]),
    ({"pseudo.labeller": "centroid", "pseudo.centroid_every": 0}, ["config.pseudo.centroid_every=0"]),
    ({"pseudo.labeller": "centroid", "pseudo.teacher": "ema"}, ["config.pseudo.teacher='student'"]),
    ({"pseudo.labeller": "head_and_centroid", "pseudo.centroid_every": 0}, ["config.pseudo.centroid_every=0"]),
    ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 0},
     ["config.distributed=True", "coordinator_address"]),
    ({"distributed": True, "coordinator_address": "h:1", "num_processes": 2},
     ["config.process_id", "give all three"]),
    ({"distributed": True, "coordinator_address": "h:1", "num_processes": 2, "process_id": 2},
     ["config.process_id=2", "num_processes=2"]),
    ({"model.batch_norm": "per_domain"}, ["config.model.batch_norm='per_domain'", "per_corpus"]),
    ({"multi_source": "mixed"}, ["config.multi_source='mixed'", "per_corpus"]),
    ({"loss.corpus_align_per_source": True}, ["config.loss.corpus_align_per_source", "source='synthetic_a'"]),
    ({"loss.corpus_align_per_source": True, "source": "synthetic_a,synthetic_c", "target": "synthetic_b",
      "multi_source": "per_corpus", "loss.corpus_align": "dann"},
     ["config.loss.corpus_align_per_source", "corpus_align='dann'"]),
    ({"features": "mfcc39", "model.shared_blocks": 3}, ["config.model.shared_blocks=3", "model.dilations=3"]),
    ({"features": "mfcc39", "model.shared_blocks": -1}, ["config.model.shared_blocks=-1", "0 = separate"]),
]


@pytest.mark.parametrize("overrides,expected", REFUSALS, ids=[",".join(o) for o, _ in REFUSALS])
def test_refusal_names_the_field(overrides, expected):
    with pytest.raises(ConfigError) as info:
        config_checks.validate(_config(**overrides))
    for text in expected:
        assert text in str(info.value), (text, str(info.value))


def test_batch_not_divisible_by_devices_is_refused_with_a_multiple_to_use():
    config = _config(batch_size=18)
    config_checks.validate(config)  # without a device count the batch cannot be checked yet
    with pytest.raises(ConfigError) as info:
        config_checks.validate(config, num_devices=4)
    assert "config.batch_size=18" in str(info.value) and "multiple of 4" in str(info.value)
    with pytest.raises(ConfigError, match=r"config.batch_size=18 .* 8 devices \(2 process"):
        config_checks.validate(config, num_devices=4, process_count=2)
    with pytest.raises(ConfigError, match="config.eval_batch_size=30"):
        config_checks.validate(_config(batch_size=16, eval_batch_size=30), num_devices=4)


def test_corpora_without_two_shared_classes_are_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(config_checks.CORPUS_EMOTIONS, "emodb", frozenset({"angry", "boredom"}))
    with pytest.raises(ConfigError, match=r"config.source='casia' and config.target='emodb' share 1 emotion"):
        config_checks.validate(_config(source="casia", target="emodb"))
    # A folder's classes are known only once it is read: the input pipeline checks those.
    config_checks.validate(_config(target=f"folder:{tmp_path}"))


def test_train_refuses_before_loading_or_compiling(tmp_path, monkeypatch):
    from emodna_jax.audio import input_pipeline
    from emodna_jax.train import trainer

    def fail(*args, **kwargs):
        raise AssertionError("data was loaded for a refused config")

    monkeypatch.setattr(input_pipeline, "create_task_data", fail)
    with pytest.raises(ConfigError, match="config.loss.temperature"):
        trainer.train_and_evaluate(_config(**{"loss.temperature": 0.0}), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_tables_agree_with_the_modules_they_mirror():
    corpora = pytest.importorskip("emodna_jax.audio.corpora")
    from emodna_jax.audio import features

    named = tuple(n for n in corpora.VALID_NAMES if not n.startswith("folder:"))
    assert set(config_checks.CORPUS_EMOTIONS) == set(named)
    assert set(config_checks.FEATURES) == set(features.FEATURE_CONFIGS)
    for name in corpora.REAL_CORPORA:
        assert config_checks.CORPUS_EMOTIONS[name] <= set(labels.EMOTIONS)
    # The authors' 5 shared classes exist in every corpus of the protocol.
    for emotions in config_checks.CORPUS_EMOTIONS.values():
        assert set(default.SHARED_CLASSES.split(",")) <= emotions


def test_every_corpus_table_is_read_from_the_one_record_per_corpus():
    """labels.CORPORA is the one declaration; the tables read from it hold the values they held when
    each was written by hand (in the order shown to the user)."""
    corpora = pytest.importorskip("emodna_jax.audio.corpora")
    from emodna_jax.audio import input_pipeline

    assert corpora.REAL_CORPORA == ("emodb", "emovo", "casia", "ravdess", "savee")
    assert corpora.SYNTHETIC_CORPORA == {"synthetic_a": "a", "synthetic_b": "b", "synthetic_c": "c"}
    assert list(cross_corpus.LETTERS.items()) == [
        ("c", "casia"), ("b", "emodb"), ("e", "emovo"), ("r", "ravdess"), ("s", "savee")]
    assert cross_corpus.SYNTHETIC == ("synthetic_a", "synthetic_b", "synthetic_c")
    assert input_pipeline.AUTO_VAL_SPEAKERS == {
        "casia": ("wangzhe",), "emodb": ("03", "08"), "emovo": ("f1", "m1"), "synthetic_a": ("af1", "am1"),
        "synthetic_b": ("bf1", "bm1"), "synthetic_c": ("cf1", "cm1")}
    assert list(config_checks.CORPUS_EMOTIONS) == list(corpora.REAL_CORPORA) + list(corpora.SYNTHETIC_CORPORA)
    assert config_checks.CORPUS_EMOTIONS["emodb"] == {
        "angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"}
    assert config_checks.CORPUS_EMOTIONS["ravdess"] == set(labels.EMOTIONS) - {"boredom"}
    assert config_checks.CORPUS_EMOTIONS["casia"] == set(labels.EMOTIONS) - {"boredom", "calm", "disgust"}
    assert config_checks.CORPUS_EMOTIONS["synthetic_b"] == set(default.SHARED_CLASSES.split(","))
    assert labels.CORPORA["savee"].codes["sa"] == "sad" and labels.CORPORA["emovo"].codes["pau"] == "fear"


def test_a_floor_of_one_is_accepted_where_nothing_makes_pseudo_labels():
    """The inert-threshold refusal is about pseudo-label consumers: a baseline without any ignores the floor."""
    config_checks.validate(helpers.set_fields(default.get_config("source_only,smoke"), {"pseudo.tau_min": 1.0}))
    config_checks.validate(helpers.set_fields(default.get_config("smoke"), {
        "pseudo.threshold": "fixed", "pseudo.tau_min": 1.0}))  # a fixed threshold ignores the floor


def test_cross_corpus_tasks_accept_letters_and_synthetic_names_and_refuse_the_rest():

    assert cross_corpus.parse_task("c2b") == ("casia", "emodb")
    assert cross_corpus.parse_task("synthetic_a2synthetic_b") == ("synthetic_a", "synthetic_b")
    for bad in ("c2c", "x2b", "cb", "synthetic_a2synthetic_a"):
        with pytest.raises(ValueError, match="SOURCE2TARGET"):
            cross_corpus.parse_task(bad)


def test_default_emodna_as_it_runs_has_every_published_component_acting():
    """configs/default.py is `emodna` as it runs (no override), a valid config, with every part of the
    published description switched on and thresholds that target examples can pass; it differs from
    the design's first reading (`emodna_literal`) in BatchNorm statistics, two loss weights, the form of
    class-level alignment and its thresholds, and its label-free selection grid (the literal reading
    runs its setting as it is)."""
    c, literal = default.get_config(), default.get_config("emodna_literal")
    assert c.method == methods.BASE == "emodna" and methods.METHODS["emodna"].overrides == {}
    assert c.to_dict() == default.get_config("emodna").to_dict()
    config_checks.validate(c, num_devices=1)
    assert c.loss.corpus_id_weight > 0 and c.loss.decoupling_weight > 0  # two encoders, decoupling
    assert c.loss.corpus_align == "mmd" and c.loss.corpus_align_weight > 0
    assert c.loss.class_align == "cross_entropy" and c.loss.class_align_weight > 0
    assert c.pseudo.threshold == "quantile" and 0 < c.pseudo.quantile_start <= c.pseudo.quantile_end < 1
    assert 0 <= c.pseudo.warmup_steps < c.num_steps
    differing = {f for f in methods.METHOD_FIELDS
                 if helpers.get_field(c, f) != helpers.get_field(literal, f)}
    assert differing == {"model.batch_norm", "loss.decoupling_weight", "loss.corpus_align_weight",
                         "loss.class_align", "pseudo.threshold", "select.grid"}
    # the default's grid is valid and selects the final pseudo-labelled fraction of each class
    from emodna_jax.workflows import selection
    points = selection.check_selection(c)
    assert sorted(p["pseudo.quantile_end"] for p in points) == [0.4, 0.6, 0.8]


def test_every_methods_grid_is_valid_and_varies_only_its_own_fields():
    """Each declared grid parses against its method's config, every point passes the config checks,
    and a grid never varies a field its method switched off (e.g. a weight of a removed component)."""
    from emodna_jax.workflows import selection
    for name in methods.METHODS:
        c = cross_corpus.get_config(f"c2b,{name}")
        if not c.select.grid:
            continue
        for point in selection.check_selection(c):
            for field in point:
                if field.endswith("_weight"):
                    assert helpers.get_field(c, field) > 0, (name, field)


def test_the_default_floor_admits_confident_target_examples_and_a_floor_of_one_does_not():
    """FreeMatch thresholds (emodna_prototype_align, emodna_literal) after a few confident batches: the
    default floor lets a 0.95-confident
    example pass; the floor 1.0 (refused above) lets nothing pass, however confident."""
    import jax.numpy as jnp

    from emodna_jax.method import thresholds

    probs = jnp.array([[0.95, 0.03, 0.02], [0.02, 0.9, 0.08], [0.999, 0.0005, 0.0005]])
    state = thresholds.init_thresholds(3)
    for _ in range(20):
        sums = thresholds.batch_statistics(probs=probs, mask=jnp.ones(3), fixed_threshold=0.95)
        state = thresholds.update_thresholds(state, sums=sums, ema=0.5)

    def passed(tau_min):
        tau = thresholds.class_thresholds(state, kind="freematch", tau_min=tau_min, fixed_threshold=0.95)
        return np.asarray(thresholds.confident_mask(probs=probs, thresholds=tau, mask=jnp.ones(3))[1])

    assert passed(default.get_config().pseudo.tau_min).sum() >= 2
    assert passed(1.0).sum() == 0


def test_every_method_is_its_flat_overrides_of_the_base_and_differs_from_every_other():
    """configs/default.py:NAME equals the base with NAME's overrides and nothing else, and no two
    methods run the same config."""
    base = default.get_config()
    configs = {}
    for name, method in methods.METHODS.items():
        c = default.get_config(name)
        config_checks.validate(c, num_devices=1)
        expected = helpers.set_fields(default.get_config(), dict(method.overrides))
        expected.method = name
        assert c.to_dict() == expected.to_dict(), name
        for field, value in method.overrides.items():  # no override restates the base
            assert helpers.get_field(base, field) != value, (name, field)
        configs[name] = {k: v for k, v in c.to_dict().items() if k != "method"}
    names = list(configs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert configs[a] != configs[b], (a, b)


def test_describe_lists_every_method_once_and_marks_the_published_ones():
    rows = methods.describe()
    assert [r[0] for r in rows] == list(methods.METHODS)
    published = {name for name, _, flag in rows if flag == "yes"}
    assert {"emodna_literal", "source_only", "adabn", "dann", "self_training_balanced"} <= published
    assert not published & {"emodna", "emodna_no_decoupling", "emodna_fixed_threshold"}
    assert all(what.strip() and "|" not in what for _, what, _ in rows)
    assert methods.markdown_table().count("\n") == len(rows) + 1


def test_the_readmes_method_table_lists_the_registered_methods():
    """README.md's method table (| method | what it is | ...) has one row per registered method, in order."""
    import os
    import re

    readme = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")).read()
    assert "| method | what it is |" in readme, "README.md lost its method table (methods.markdown_table())"
    table = readme.split("| method | what it is |", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^\| `([a-z_0-9]+)` \|", table, re.M) == list(methods.METHODS)


def _parse_flags(argv):
    """What train.py does with its command line: the method flag expanded, then absl's config flags."""
    from absl import flags
    from ml_collections import config_flags

    argv = methods.expand_method_flag(["train.py", *argv], default.get_config())
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    return values.config


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_method_flag_gives_the_methods_config(name):
    """`--config.method=NAME` = `configs/default.py:NAME`, even over a config file that named another method."""
    for spec in ("configs/default.py", "configs/default.py:pseudo_label", "configs/default.py:adabn"):
        assert _parse_flags([f"--config={spec}", f"--config.method={name}"]).to_dict() == \
            default.get_config(name).to_dict(), spec


def test_user_flags_win_over_the_method_flag_wherever_it_stands():
    for argv in (["--config.method=mmd", "--config.loss.corpus_align_weight=0.5"],
                 ["--config.loss.corpus_align_weight=0.5", "--config.method", "mmd"]):
        c = _parse_flags(["--config=configs/cross_corpus.py:c2b,adabn,smoke", *argv])
        assert (c.method, c.model.batch_norm, c.loss.corpus_align, c.loss.corpus_align_weight) == \
            ("mmd", "shared", "mmd", 0.5)
        assert (c.task, c.num_steps) == ("c2b", 12)  # the file's other settings stay
    with pytest.raises(ValueError, match="'emodnaa' is not a method.*emodna_literal"):
        _parse_flags(["--config=configs/default.py", "--config.method=emodnaa"])
    with pytest.raises(ValueError, match="once"):
        _parse_flags(["--config=configs/default.py", "--config.method=mmd", "--config.method=dann"])
    for two in ("mmd,dann", "emodna,mmd,smoke"):
        with pytest.raises(ValueError, match="one method per config"):
            default.get_config(two)
