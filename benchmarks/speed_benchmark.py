"""Speed benchmark: the compiled Emo-DNA train step against the source-only step and the authors'
Keras TIM-Net with XLA, side by side in one process, interleaved (A B C A B C ...), medians.

    .venv/bin/python benchmarks/speed_benchmark.py [--quick] [--rounds=3] [--steps=3] [--write_results]

Cases (configs/cross_corpus.py:c2b,<method>: batch 64 source + 64 target, input [188, 39]):
  emodna warm-up / adapt (pmap, 1 device), source_only (pmap, 1 device), emodna adapt under
  shard_map on 1 device, and both backends on 2 forced CPU devices (the per-device batch halves);
  the shared-trunk Emo-DNA, and source-only and Emo-DNA with target consistency;
  keras_timnet: TIM-Net in tf.keras, `train_on_batch` with jit_compile=True, batch 64.
Counting: one Emo-DNA or source-only example is one source + one target utterance (64 a step);
encoder-examples count utterances through encoders: 4 per Emo-DNA example (2 utterances x 2 encoders),
2 per source-only example, 1 per Keras example. Compile time = first call - median step; the second
call is timed too (untimed otherwise): it shows a recompile when one happens.
Also: the pseudo-label forward of the adaptation step (full joint batch, all encoders) against the
emotion encoder alone (exactly the same logits, models.emotion_encoder_view) and against the emotion
encoder on the target half only (different BatchNorm statistics); input-pipeline throughput
(create_task_data on in-memory arrays); peak RSS of a short run of each case in a fresh process.
--write_results replaces the "## Speed" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import cross_corpus  # noqa: E402
from benchmarks import results_file  # noqa: E402
from emodna_jax.audio import input_pipeline, labels  # noqa: E402
from emodna_jax.model import models  # noqa: E402
from emodna_jax.train import parallel, step_functions  # noqa: E402

T, F, BATCH, K = 188, 39, 64, 5


def fake_corpus(name: str, n: int, seed: int) -> input_pipeline.CorpusArrays:
    rng = np.random.default_rng(seed)
    names = ("angry", "fear", "happy", "neutral", "sad")
    return input_pipeline.CorpusArrays(
        name, rng.normal(size=(n, T, F)).astype(np.float32),
        np.array([labels.LABEL_NAMES.index(names[i % K]) for i in range(n)], np.int64),
        np.array([f"s{i % 10}" for i in range(n)], object), np.array([f"{i}.wav" for i in range(n)], object))


CORPORA = {}


def task_data(config, num_devices: int) -> input_pipeline.TaskData:
    if not CORPORA:
        CORPORA.update(src=fake_corpus("src", 1000, 0), tgt=fake_corpus("tgt", 400, 1))
    config.source, config.target = "src", "tgt"
    return input_pipeline.create_task_data(config, num_devices=num_devices,
                                           load_fn=lambda name, config, split: CORPORA[name])


def jax_case(method: str, backend_name: str, devices: int, adapt: bool):
    """A callable running one train step (blocking), and the counts per step."""
    config = cross_corpus.get_config(f"c2b,{method}")
    backend = parallel.create_backend(backend_name, num_devices=devices)
    fns = step_functions.make_step_functions(config, num_classes=K, backend=backend)
    holder = {"state": fns.init_state(config, (T, F))}
    batch = task_data(config, devices).train_batch(0)

    def step():
        holder["state"], metrics = fns.train(holder["state"], batch, adapt=adapt)
        jax.block_until_ready((holder["state"], metrics))

    encoders = fns.model.num_encoders
    return step, {"examples": BATCH, "encoder_examples": BATCH * 2 * encoders}


def keras_timnet(num_classes: int = K, filters: int = 39, kernel: int = 2, dilations: int = 8,
                 dropout: float = 0.1):
    """TIM-Net as in the authors' public code (Jiaxin-Ye/TIM-Net_SER, Model/TIMNET.py, Model.py)."""
    import keras
    from keras import layers, ops

    def block(x, dilation):
        original = x
        h = x
        for _ in range(2):
            h = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="causal")(h)
            h = layers.BatchNormalization(axis=-1)(h)
            h = layers.Activation("relu")(h)
            h = layers.SpatialDropout1D(dropout)(h)
        if original.shape[-1] != filters:
            original = layers.Conv1D(filters, 1, padding="same")(original)
        return layers.Multiply()([original, layers.Activation("sigmoid")(h)])

    class WeightLayer(layers.Layer):  # the authors' learned weighted fusion of the scales
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[1], 1), initializer="uniform", name="kernel")

        def call(self, x):
            return ops.squeeze(ops.matmul(ops.transpose(x, (0, 2, 1)), self.kernel), -1)

    inputs = keras.Input((T, F))
    fwd = layers.Conv1D(filters, 1, padding="causal")(inputs)
    bwd = layers.Conv1D(filters, 1, padding="causal")(layers.Lambda(lambda v: ops.flip(v, 1))(inputs))
    skips = []
    for i in range(dilations):
        fwd, bwd = block(fwd, 2**i), block(bwd, 2**i)
        pooled = layers.GlobalAveragePooling1D()(layers.Add()([fwd, bwd]))
        skips.append(layers.Reshape((1, filters))(pooled))
    fused = WeightLayer()(layers.Concatenate(axis=-2)(skips))
    model = keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(fused))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", jit_compile=True)
    return model


def keras_case():
    model = keras_timnet()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, T, F)).astype(np.float32)
    y = np.eye(K, dtype=np.float32)[rng.integers(0, K, BATCH)]

    def step():
        model.train_on_batch(x, y)

    return step, {"examples": BATCH, "encoder_examples": BATCH}


CASES = {
    "emodna_warmup_pmap_1dev": lambda: jax_case("emodna", "pmap", 1, False),
    "emodna_adapt_pmap_1dev": lambda: jax_case("emodna", "pmap", 1, True),
    "source_only_pmap_1dev": lambda: jax_case("source_only", "pmap", 1, False),
    "emodna_adapt_shard_map_1dev": lambda: jax_case("emodna", "shard_map", 1, True),
    "emodna_literal_adapt_pmap_1dev": lambda: jax_case("emodna_literal", "pmap", 1, True),
    "emodna_shared_trunk_adapt_pmap_1dev": lambda: jax_case("emodna_shared_trunk", "pmap", 1, True),
    "emodna_consistency_adapt_pmap_1dev": lambda: jax_case("emodna_consistency", "pmap", 1, True),
    "consistency_pmap_1dev": lambda: jax_case("consistency", "pmap", 1, False),
    "emodna_adapt_pmap_2dev": lambda: jax_case("emodna", "pmap", 2, True),
    "emodna_adapt_shard_map_2dev": lambda: jax_case("emodna", "shard_map", 2, True),
    "keras_timnet_xla": keras_case,
}
QUICK = ("emodna_warmup_pmap_1dev", "emodna_adapt_pmap_1dev", "source_only_pmap_1dev", "keras_timnet_xla")


# (numerator case, denominator case, what the ratio of their step times says)
RATIOS = (
    ("emodna_adapt_pmap_1dev", "source_only_pmap_1dev", "Emo-DNA adapt step / source-only step time"),
    ("emodna_shared_trunk_adapt_pmap_1dev", "emodna_adapt_pmap_1dev",
     "shared-trunk / separate-encoder Emo-DNA adapt step time"),
    ("emodna_adapt_pmap_1dev", "emodna_warmup_pmap_1dev", "adapt / warm-up step time"),
    ("emodna_consistency_adapt_pmap_1dev", "emodna_adapt_pmap_1dev",
     "Emo-DNA adapt step with / without target consistency"),
    ("consistency_pmap_1dev", "source_only_pmap_1dev", "source-only step with / without target consistency"),
    ("emodna_adapt_shard_map_1dev", "emodna_adapt_pmap_1dev", "shard_map / pmap Emo-DNA adapt step time, 1 device"),
    ("emodna_adapt_shard_map_2dev", "emodna_adapt_pmap_2dev", "shard_map / pmap Emo-DNA adapt step time, 2 devices"),
    ("emodna_adapt_pmap_2dev", "emodna_adapt_pmap_1dev",
     "2 / 1 forced CPU devices, pmap Emo-DNA adapt step time (same global batch, same 2 cores)"),
)


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


FULL_FORWARD = "full model, joint batch"


def pseudo_label_forwards():
    """Three stop-gradient forwards a pseudo-label step could run, as jitted callables."""
    config = cross_corpus.get_config("c2b,emodna_literal")  # shared BatchNorm: any half can run alone
    model = models.create_model(config, num_classes=K, num_corpora=2, axis_name=None)
    x = jax.random.normal(jax.random.PRNGKey(0), (2 * BATCH, T, F))
    variables = model.init({"params": jax.random.PRNGKey(1)}, x[:2], train=False)
    e_model, e_vars = models.emotion_encoder_view(model, variables)

    def forward(m, v, xx):
        out, _ = m.apply(v, xx, train=True, use_dropout=False, mutable=["batch_stats"])
        return jax.nn.softmax(out["logits_e"][-BATCH:])

    full = jax.jit(functools.partial(forward, model))
    emotion = jax.jit(functools.partial(forward, e_model))
    exact = float(np.max(np.abs(full(variables, x) - emotion(e_vars, x))))
    fns = {FULL_FORWARD: lambda: full(variables, x).block_until_ready(),
           "emotion encoder, joint batch (same logits; shared-BatchNorm models use it)":
               lambda: emotion(e_vars, x).block_until_ready(),
           "emotion encoder, target half only (per-corpus-BatchNorm models, the default, use it)":
               lambda: emotion(e_vars, x[BATCH:]).block_until_ready()}
    for f in fns.values():
        f()
    return fns, exact


def pipeline_throughput(seconds: float) -> float:
    config = cross_corpus.get_config("c2b,emodna")
    data = task_data(config, 1)
    it = data.train_batches()
    next(it)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        steps += 1
    return BATCH * steps / (time.perf_counter() - start)


def child_memory(case: str, steps: int) -> None:
    """Child process: build one case, run `steps` steps, print peak RSS (MiB) as JSON."""
    step, _ = CASES[case]()
    for _ in range(steps):
        step()
    # VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so a child started from
    # this (large) process would report the parent's peak.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/status") as f:
        peak = next((int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmHWM:")), peak)
    print(json.dumps({"case": case, "maxrss_mib": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 cases, 2 rounds of 2 steps, no memory children")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per case per round")
    ap.add_argument("--cases", default="", help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--write_results", action="store_true")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_memory(args.child, 3)
    names = [c for c in args.cases.split(",") if c] or list(QUICK if args.quick else CASES)
    rounds, steps = (2, 2) if args.quick else (args.rounds, args.steps)
    load = os.getloadavg()[0]

    built, compile_first = {}, {}
    for name in names:
        start = time.perf_counter()
        step, counts = CASES[name]()
        step()
        second = time.perf_counter()
        step()  # a second compile happens here when the step's output state differs in sharding
        compile_first[name] = (second - start, time.perf_counter() - second)
        built[name] = (step, counts)
        print(f"built {name}: first call {compile_first[name][0]:.1f} s, second "
              f"{compile_first[name][1]:.1f} s", flush=True)
    pl_fns, pl_exact = pseudo_label_forwards()
    times = {n: [] for n in list(built) + list(pl_fns)}
    for r in range(rounds):  # interleaved: every case once per round
        for name, (step, _) in built.items():
            times[name].append(timed(step, steps))
        for name, f in pl_fns.items():
            times[name].append(timed(f, steps))
        print(f"round {r}: " + ", ".join(f"{n} {v[-1]:.3f}" for n, v in times.items()), flush=True)
    med = {n: statistics.median(v) for n, v in times.items()}
    pipe = pipeline_throughput(2.0 if args.quick else 5.0)

    memory = {}
    if not args.quick:
        for name in names:
            out = subprocess.run([sys.executable, __file__, f"--child={name}"], capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            memory[name] = json.loads(lines[-1])["maxrss_mib"] if lines else float("nan")

    keras = "keras_timnet_xla"
    rows = ["| case | s/step (median) | examples/s | encoder-examples/s | vs Keras TIM-Net XLA "
            "(encoder-examples/s) | compile s (1st call) | 2nd call s | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, (_, counts) in built.items():
        eps = counts["examples"] / med[name]
        enc = counts["encoder_examples"] / med[name]
        ratio = f"{enc / (BATCH / med[keras]):.2f}x" if keras in med else "-"
        mem = f"{memory[name]:.0f}" if name in memory else "-"
        rows.append(f"| {name} | {med[name]:.3f} | {eps:.0f} | {enc:.0f} | {ratio} | "
                    f"{max(compile_first[name][0] - med[name], 0):.1f} | {compile_first[name][1]:.1f} | {mem} |")
    rows += ["", "| pseudo-label forward (stop-gradient, no dropout) | s (median) | vs full model |",
             "|---|---:|---:|"]
    base = med[FULL_FORWARD]
    rows += [f"| {n} | {med[n]:.3f} | {med[n] / base:.2f}x |" for n in pl_fns]
    ratios = [f"{what}: {med[a] / med[b]:.2f}x" for a, b, what in RATIOS if a in med and b in med]
    ratios.append(f"emotion-encoder-only pseudo-label probabilities vs full model: max |diff| {pl_exact:.1e}")
    step_case = "emodna_adapt_pmap_1dev" if "emodna_adapt_pmap_1dev" in med else names[0]
    train_eps = BATCH / med[step_case]
    ratios.append(f"input pipeline (TaskData.train_batches, in-memory, 1 device): {pipe:.0f} examples/s "
                  f"= {pipe / train_eps:.0f}x the {step_case} step's {train_eps:.0f} examples/s")
    command = "python benchmarks/speed_benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = "\n".join(rows + [""] + [f"- {r}" for r in ratios])
    print(text)
    if args.write_results:
        write_results(command, text, load, rounds, steps)


def write_results(command: str, body: str, load: float, rounds: int, steps: int) -> None:
    section = (f"## Speed\n\nCommand (from the repository root, `.venv/bin/python`): `{command}`\n"
               f"Machine: {os.cpu_count()} CPU cores, shared with other jobs (1-minute load average "
               f"at the start {load:.1f}); JAX {jax.__version__}, float32. {rounds} interleaved rounds "
               f"of {steps} timed steps per case; medians over rounds. Absolute times vary with the "
               f"load; compare the ratios, which come from one run.\n\n{body}\n")
    results_file.write_section("Speed", section)


if __name__ == "__main__":
    main()
