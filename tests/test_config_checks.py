"""Every refusal of config_checks names the field to change; good configs pass; the tables it keeps
agree with the modules they mirror."""

import pytest

from configs import cross_corpus, default
from emodna_jax import config_checks, labels, methods
from emodna_jax.config_checks import ConfigError
from tests import helpers


def _config(**overrides):
    return helpers.set_fields(default.get_config("smoke"), overrides)


@pytest.mark.parametrize("name", ["default", "smoke"] + [f"c2b,{m}" for m in methods.METHODS])
def test_shipped_configs_pass(name):
    config = default.get_config("" if name == "default" else name) if "," not in name else \
        cross_corpus.get_config(name)
    config_checks.validate(config, num_devices=1)


def test_deep_coral_is_coral_with_the_papers_weight_rule():
    """deep_coral differs from coral in the CORAL weight only (every other field equal)."""
    coral, deep = (cross_corpus.get_config(f"c2b,{m}").to_dict() for m in ("coral", "deep_coral"))
    assert deep["loss"].pop("corpus_align_weight") == methods.DEEP_CORAL_WEIGHT > 1
    assert coral["loss"].pop("corpus_align_weight") == 1.0
    for d in (coral, deep):
        d.pop("method"), d.pop("method_settings")
    assert deep == coral


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
    ({"model.shared_blocks": 3}, ["config.model.shared_blocks=3", "model.dilations=3"]),
    ({"model.shared_blocks": -1}, ["config.model.shared_blocks=-1", "0 = separate"]),
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
    from emodna_jax import input_pipeline, trainer

    def fail(*args, **kwargs):
        raise AssertionError("data was loaded for a refused config")

    monkeypatch.setattr(input_pipeline, "create_task_data", fail)
    with pytest.raises(ConfigError, match="config.loss.temperature"):
        trainer.train_and_evaluate(_config(**{"loss.temperature": 0.0}), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_tables_agree_with_the_modules_they_mirror():
    corpora = pytest.importorskip("emodna_jax.corpora")
    from emodna_jax import features

    named = tuple(n for n in corpora.VALID_NAMES if not n.startswith("folder:"))
    assert set(config_checks.CORPUS_EMOTIONS) == set(named)
    assert set(config_checks.FEATURES) == set(features.FEATURE_CONFIGS)
    for name in corpora.REAL_CORPORA:
        assert config_checks.CORPUS_EMOTIONS[name] <= set(labels.EMOTIONS)
    # The authors' 5 shared classes exist in every corpus of the protocol.
    for emotions in config_checks.CORPUS_EMOTIONS.values():
        assert set(default.SHARED_CLASSES.split(",")) <= emotions


def test_method_name_changed_without_its_settings_is_refused():
    from configs import default
    config = default.get_config("emodna")
    config.method = "mmd"  # what --config.method=mmd does: the name only
    with pytest.raises(ConfigError, match=r"config.method='mmd' .* settings of 'emodna'.*default.py:mmd"):
        config_checks.validate(config)
    config_checks.validate(default.get_config("mmd"))


def test_cross_corpus_tasks_accept_letters_and_synthetic_names_and_refuse_the_rest():
    from configs import cross_corpus

    assert cross_corpus.parse_task("c2b") == ("casia", "emodb")
    assert cross_corpus.parse_task("synthetic_a2synthetic_b") == ("synthetic_a", "synthetic_b")
    for bad in ("c2c", "x2b", "cb", "synthetic_a2synthetic_a"):
        with pytest.raises(ValueError, match="SOURCE2TARGET"):
            cross_corpus.parse_task(bad)


def test_default_emodna_keeps_every_published_component():
    """The project's default differs from the literal reading only in BatchNorm statistics, three
    loss weights and the thresholds' floor; every part of the published description stays switched on."""
    from configs import default
    from emodna_jax import methods

    c, literal = default.get_config("emodna"), default.get_config("emodna_literal")
    assert c.loss.corpus_id_weight > 0 and c.loss.decoupling_weight > 0  # two encoders, decoupling
    assert c.loss.corpus_align == "mmd" and c.loss.corpus_align_weight > 0
    assert c.loss.class_align == "prototype" and c.loss.class_align_weight > 0
    assert c.pseudo.threshold == "freematch"  # adaptive thresholds
    assert (c.model.batch_norm, literal.model.batch_norm) == ("per_corpus", "shared")
    assert (c.loss.decoupling_weight == c.loss.corpus_align_weight == c.loss.class_align_weight
            == methods.AUXILIARY_SCALE)
    differing = {k for k in ("corpus_id_weight", "decoupling_weight", "corpus_align_weight",
                             "class_align_weight", "temperature", "label_smoothing")
                 if c.loss[k] != literal.loss[k]}
    assert differing == {"decoupling_weight", "corpus_align_weight", "class_align_weight"}
    assert (c.pseudo.tau_min, literal.pseudo.tau_min) == (methods.CALIBRATED_FLOOR, methods.FREEMATCH_FLOOR)
    # The previous default differs from the current one in the floor alone, the one before it in d too.
    previous = default.get_config("emodna_floor_0_7")
    assert previous.pseudo.tau_min == 0.7
    previous.pseudo.tau_min = c.pseudo.tau_min
    previous.method = previous.method_settings = c.method
    assert previous.to_dict() == c.to_dict()
    before = default.get_config("emodna_full_class_align")
    assert (before.loss.class_align_weight, before.pseudo.tau_min) == (1.0, 0.7)
    before.loss.class_align_weight, before.pseudo.tau_min = c.loss.class_align_weight, c.pseudo.tau_min
    before.method = before.method_settings = c.method
    assert before.to_dict() == c.to_dict()


def test_every_method_sets_its_own_floor():
    """`configs/default.py:<method>` starts from the default method's settings; a method that left the
    floor alone would inherit the default's calibrated 1.0 instead of FreeMatch's 0.7."""
    from configs import default
    from emodna_jax import methods

    for name in methods.METHODS:
        c = default.get_config(name)
        expected = methods.CALIBRATED_FLOOR if name == "emodna" or (
            name.startswith("emodna_") and not name.startswith(("emodna_floor_0_7", "emodna_full_class_align",
                                                                "emodna_literal", "emodna_per_corpus_bn",
                                                                "emodna_balanced"))) else methods.FREEMATCH_FLOOR
        assert c.pseudo.tau_min == expected, name
