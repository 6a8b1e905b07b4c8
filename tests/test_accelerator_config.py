"""configs/accelerator.py: loads, passes config_checks, and differs from configs/cross_corpus.py only
in its schedule fields."""

import pytest

from configs import accelerator, cross_corpus
from emodna_jax.train import config_checks


def _flat(config, prefix=""):
    """{'loss.temperature': 0.1, ...} over every leaf of a ConfigDict."""
    out = {}
    for key, value in config.items():
        if hasattr(value, "items"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("arg", ["c2b,emodna", "b2e,source_only", "e2c,dann"])
def test_differs_from_cross_corpus_only_in_schedule(arg):
    acc, cpu = _flat(accelerator.get_config(arg)), _flat(cross_corpus.get_config(arg))
    assert acc.keys() == cpu.keys()
    changed = {k for k in acc if acc[k] != cpu[k]}
    assert changed == set(accelerator.SCHEDULE_FIELDS)
    assert acc["batch_size"] == 256 and acc["num_steps"] == 2000 and acc["eval_batch_size"] == 1024
    # The schedule keeps the CPU run's fractions: warm-ups scale with num_steps.
    ratio = acc["num_steps"] / cpu["num_steps"]
    assert acc["pseudo.warmup_steps"] == cpu["pseudo.warmup_steps"] * ratio
    assert acc["lr_warmup_steps"] == cpu["lr_warmup_steps"] * ratio
    assert acc["checkpoint_every"] % acc["pseudo.centroid_every"] == 0


@pytest.mark.parametrize("devices", [1, 8, 256])
def test_passes_config_checks(devices):
    config_checks.validate(accelerator.get_config("c2b,emodna"), num_devices=devices)


def test_refuses_indivisible_device_count_and_smoke():
    with pytest.raises(config_checks.ConfigError, match="batch_size=256"):
        config_checks.validate(accelerator.get_config("c2b,emodna"), num_devices=3)
    with pytest.raises(ValueError, match="smoke"):
        accelerator.get_config("c2b,emodna,smoke")
