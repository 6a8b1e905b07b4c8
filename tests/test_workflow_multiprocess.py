"""A multi-host run on one machine: two train.py processes of two CPU devices each (jax.distributed over
gloo) must train and evaluate the one model that a single process of four devices does (the single
process is this one: conftest.py forces four CPU devices)."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from configs import default
from emodna_jax.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.usefixtures("compilation_cache")


def _env(base: dict, devices: int) -> dict:
    env = dict(base)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _results(workdir) -> dict:
    with open(os.path.join(workdir, "results.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("backend,labeller", [("pmap", "centroid"), ("shard_map", "head")])
def test_two_processes_train_the_model_of_one(backend, labeller, synthetic_affect_dir, subprocess_env,
                                              tmp_path):
    config = default.get_config("smoke")
    config.pseudo.labeller, config.data_dir, config.backend = labeller, synthetic_affect_dir, backend
    config.plots = False
    trainer.train_and_evaluate(config, str(tmp_path / "one"))  # the single process of four devices
    args = [sys.executable, os.path.join(ROOT, "train.py"), "--config=configs/default.py:smoke",
            f"--config.pseudo.labeller={labeller}", f"--config.data_dir={synthetic_affect_dir}",
            f"--config.backend={backend}", "--config.plots=False"]

    port, workdir = _free_port(), tmp_path / "two"
    procs = [subprocess.Popen(
        args + [f"--workdir={workdir}", "--config.distributed=True",
                f"--config.coordinator_address=localhost:{port}", "--config.num_processes=2",
                f"--config.process_id={p}"],
        cwd=ROOT, env=_env(subprocess_env, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in range(2)]
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:  # a hung collective must not outlive the test
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]

    single, multi = _results(tmp_path / "one"), _results(workdir)
    assert multi["devices"] == f"4 x cpu ({backend}), 2 process(es)"
    # The whole target is evaluated, not process 0's share of it.
    assert multi["num_target_examples"] == single["num_target_examples"] == 200
    # One model: same losses (to the order of cross-process sums) and the same predictions.
    assert multi["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4)
    assert multi["confusion"] == single["confusion"]
    assert multi["centroid"]["confusion"] == single["centroid"]["confusion"]
    for key, value in single["train_monitors"].items():
        assert multi["train_monitors"][key] == pytest.approx(value, rel=1e-3, abs=1e-5), key
