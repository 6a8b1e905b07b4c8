"""Base configuration: the default method, Emo-DNA (`emodna`), exactly as it runs, on the embedded
synthetic corpora (no download).

Every field below is the value a run uses. Every other method is a few fields set differently
(emodna_jax/method/methods.py: METHODS), and every other config file starts from this one. Run with
`python train.py --config=configs/default.py --workdir=DIR`; `configs/default.py:NAME` is method NAME
(as is `--config.method=NAME`), `configs/default.py:smoke` (or `:NAME,smoke`) shrinks everything for tests.
"""

import ml_collections

from emodna_jax.method import methods

SHARED_CLASSES = "angry,fear,happy,neutral,sad"


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.task = ""  # a name for reports, e.g. "c2b"; "" = "<source>2<target>"

    # ---- data -------------------------------------------------------------------------------
    # A TFDS builder name (emodb, emovo, casia, ravdess, savee, synthetic_a/b/c) or
    # `folder:PATH` for one's own recordings (the audio_folder builder).
    c.source = "synthetic_a"
    c.target = "synthetic_b"
    # Several sources (source="casia,emodb", emodna_jax/audio/source_pool.py): "pooled" gives them ONE
    # corpus id (D = 2 corpora in the step), "per_corpus" one id each (D = sources + target: a corpus
    # prototype and a corpus-classifier class per corpus). One source: D = 2 either way.
    c.multi_source = "pooled"
    # Comma-separated canonical emotion names; both corpora must have every one of them.
    c.classes = SHARED_CLASSES
    # Folder holding each real corpus' manual folder as <corpora_root>/<corpus>.
    c.corpora_root = ""
    # Where TFDS writes built datasets; "" means ~/.cache/emodna_jax/tfds.
    c.data_dir = ""
    # TFDS builder config = front end. "affect" (the default): 78 eGeMAPS-like utterance functionals
    # computed with librosa from the whole utterance, one frame [1, 78] (emodna_jax/audio/functionals.py);
    # "mfcc39": the authors' 39 MFCCs, 22,050 Hz, 96,000 samples [188, 39]; "affect_frames" [401, 24];
    # "logmel64"; "egemaps"/"compare" (openSMILE, optional: requirements-opensmile.txt).
    c.features = "affect"
    # Feature standardisation: "speaker" (each speaker by its own unlabelled statistics; reads speaker
    # ids, no label; adopted by a rule fixed beforehand, benchmarks/RESULTS.md "Speaker
    # normalisation"), "corpus" (each corpus by its own; the default before), "utterance" (each
    # utterance by itself) or "none" (raw, as the authors did). A corpus whose examples all carry
    # one speaker id ("unknown" in a folder without speakers) gets corpus statistics either way.
    c.normalization = "speaker"
    # Per-speaker statistics only for a speaker with at least this many recordings; the others get
    # their corpus' statistics (a speaker with few recordings may hold one emotion, whose mean the
    # speaker statistics would then subtract). The run log says which statistics each corpus got.
    c.normalization_min_per_speaker = 20
    c.shuffle_buffer = 2048
    # The target split used both as unlabelled training data and as the test set
    # (the authors' protocol: the whole target corpus).
    c.target_split = "train"
    # Source speakers held out of training in a plain run ("auto" or "spk1,spk2"; "" = none); the
    # label-free selection's grid points hold out select.val_speakers instead.
    c.source_val_speakers = ""

    # ---- model ------------------------------------------------------------------------------
    c.model = ml_collections.ConfigDict()
    # Encoder architecture: "timnet" (TIM-Net over frame sequences, the authors'), "mlp" (MLPs over
    # utterance functionals) or "linear" (no hidden layer: the linear probe through the same trainer);
    # "auto" = mlp for a one-frame front end (affect, egemaps), timnet for frame sequences (mfcc39).
    c.model.backbone = "auto"
    c.model.hidden_dim = 256  # mlp: width of each hidden layer.
    c.model.num_layers = 2  # mlp: hidden layers per encoder.
    c.model.filters = 39  # TIM-Net's channel width (= number of MFCCs in the authors' code).
    c.model.kernel_size = 2  # causal dilated conv kernel, as TIM-Net.
    c.model.dilations = 8  # dilations 1, 2, ..., 2**(dilations-1): receptive field 256 frames.
    c.model.dropout_rate = 0.1  # spatial dropout inside each temporal block.
    c.model.embed_dim = 64  # h: size of z_e and z_c.
    # Number of lower temporal blocks (with the input projection) shared by the emotion and corpus
    # encoders, 0 = separate as published; the trunk takes the emotion encoder's BatchNorm statistics.
    c.model.shared_blocks = 0
    # BatchNorm statistics: "shared" over source+target in one call (as published), or "per_corpus"
    # (separate statistics per corpus in the emotion encoder, the target's at test time; AdaBN-style;
    # the corpus encoder keeps joint ones). per_corpus: chosen on the synthetic corpora before any real
    # run; `adabn` is its source-only control, `emodna_literal` the published shared statistics.
    c.model.batch_norm = "per_corpus"
    c.model.bn_momentum = 0.0  # 0 = tied to the schedule: min(0.99, 1 - 10 / num_steps) (models.batch_norm_momentum)

    # ---- method -----------------------------------------------------------------------------
    c.method = "emodna"  # the name of the method whose settings these are (emodna_jax/method/methods.py)
    c.loss = ml_collections.ConfigDict()
    c.loss.label_smoothing = 0.1
    c.loss.temperature = 0.1  # tau of the prototype contrastive losses.
    c.loss.corpus_id_weight = 1.0  # a: corpus classification by the corpus encoder (docs/method.md)
    # b, c, d: the published description has 1; 0.1 was chosen among {1, 0.3, 0.1} for b and c by the
    # mean source-validation UAR on held-out source speakers (40.0, 41.1, 44.5; no target label read),
    # d is 1: class-level alignment as cross-entropy on class-balanced pseudo-labels, confirmed on
    # unseen leave-one-corpus-out tasks by a rule declared before those runs (docs/decisions.md §11).
    c.loss.decoupling_weight = 0.1  # b: contrastive decoupling of z_e and z_c against both prototype banks
    c.loss.corpus_align_weight = 0.1  # c: corpus-level alignment, ramped by the DANN schedule
    c.loss.class_align_weight = 1.0  # d: class-level alignment on confident target pseudo-labels
    c.loss.corpus_align = "mmd"  # mmd | dann | coral | none
    # Several sources with one corpus id each (multi_source="per_corpus"): MMD or CORAL as the mean of
    # one term per source corpus against the target, instead of one between the pooled sources and it.
    c.loss.corpus_align_per_source = False
    # The form of class-level alignment: cross-entropy of the head on the confident target pseudo-labels
    # (self-training); "prototype" (contrastive to the emotion prototypes, the design's first reading and
    # the default before §11; method emodna_prototype_align) and "lmmd" are options.
    c.loss.class_align = "cross_entropy"  # cross_entropy | prototype | lmmd | none
    # Weight of the diversity term (negative entropy of the mean target prediction), 0 = off.
    c.loss.diversity_weight = 0.0
    # Weight of target consistency (KL between the prediction of a target example and of its strong
    # view, emodna_jax/audio/augment.py; UDA-style, no pseudo-label), 0 = off. Costs one more emotion-encoder
    # forward and backward on the target half a step.
    c.loss.consistency_weight = 0.0
    # MMD kernel bandwidths as multiples of the mean pairwise squared distance of the batch.
    c.loss.mmd_bandwidths = (0.25, 0.5, 1.0, 2.0, 4.0)

    c.pseudo = ml_collections.ConfigDict()
    # Steps before any target pseudo-label is used (L_dec, P_e update, L_class).
    c.pseudo.warmup_steps = 40  # a fifth of the run on source labels (+ corpus losses) only
    # Per-class adaptive thresholds: class-balanced quantiles (per predicted class, the most confident
    # quantile_start -> quantile_end fraction of the target batch; no class can swamp the others).
    c.pseudo.threshold = "quantile"  # quantile | freematch | fixed | flexmatch | none
    c.pseudo.fixed_threshold = 0.95
    # Floor of the FreeMatch thresholds: FreeMatch's 0.7 (a later label-free selection may tune it). It
    # must stay below 1: the scaled threshold is at most 1, so a floor of 1 admits no target example
    # and config_checks refuses it as inert.
    c.pseudo.tau_min = 0.7
    # EMA rate of the threshold statistics; 0 means tie it to the schedule:
    # lam = 1 - 1 / (0.1 * num_steps).
    c.pseudo.threshold_ema = 0.0
    # Quantile thresholds: fraction of each predicted class kept, growing linearly over adaptation.
    c.pseudo.quantile_start = 0.2
    c.pseudo.quantile_end = 0.6
    # Who makes pseudo-labels: "student" (stop-gradient forward without dropout) or "ema" teacher.
    c.pseudo.teacher = "student"
    c.pseudo.teacher_decay = 0.99
    # Distribution alignment of the target probabilities before thresholding (ReMixMatch/AdaMatch):
    # q * uniform / (running mean of q), renormalised, so over-predicted classes yield fewer pseudo-labels.
    c.pseudo.distribution_alignment = False
    # Keep a pseudo-label only where a strong view of the example (time shift, time and coefficient
    # masks, noise: emodna_jax/audio/augment.py) gets the same class: one more target-only forward a step.
    c.pseudo.agreement = False
    # Who labels the target: "head" (the classifier's probabilities, as published) or "centroid" (the
    # target's own class centroids in z_e over the whole unlabelled target, SHOT-style, recomputed
    # at the first adaptation step and every step that is a multiple of `centroid_every`, from an
    # inference pass: emodna_jax/eval/target_labeller.py). The thresholds, distribution alignment and
    # agreement then act on the labeller's probabilities; or "head_and_centroid" (the head labels, and
    # a pseudo-label is kept only where the centroid table names the same class). 25 divides
    # checkpoint_every, so a run resumed from a regular checkpoint relabels exactly as an
    # uninterrupted one.
    c.pseudo.labeller = "head"
    c.pseudo.centroid_every = 25
    c.prototype_momentum = 0.9  # m of the prototype EMA

    # ---- optimisation -----------------------------------------------------------------------
    # The one schedule of the main job and of the benchmark table, fixed before any target result was
    # seen and used unchanged for every task and method. Sized so that a run takes a few minutes on a
    # 2-core CPU: 32 source + 32 target examples a step for 200 steps is about 6 epochs of CASIA and
    # 16 of EmoDB (CAAM trained 512 a step for 120 epochs; raise both on an accelerator).
    c.batch_size = 32  # global, per stream: 32 source + 32 target examples a step.
    c.num_steps = 200
    c.learning_rate = 1e-3
    c.lr_warmup_steps = 10
    c.weight_decay = 1e-4
    c.grad_clip_norm = 5.0
    # Data-parallel backend: "pmap" (the design card's default) or "shard_map" (Mesh-based).
    c.backend = "pmap"
    c.num_devices = 0  # 0 = all local devices
    c.distributed = False  # call jax.distributed.initialize() (multi-host pods)
    # With distributed: "" lets JAX detect the cluster (Cloud TPU, SLURM, Open MPI, Kubernetes);
    # elsewhere give process 0's "host:port" and, per process, the count and this process' id.
    c.coordinator_address = ""
    c.num_processes = 0
    c.process_id = -1

    # ---- logging, checkpoints, evaluation ---------------------------------------------------
    c.log_every = 20
    c.checkpoint_every = 50
    c.max_checkpoints = 2
    c.eval_batch_size = 128
    # Log the target UAR every N steps as a MONITOR ONLY (never used to choose anything); 0 = off.
    c.monitor_target_every = 0
    c.plots = True

    # ---- label-free model selection (emodna_jax/workflows/selection.py, docs/method.md) -----------------
    # Every method declares a small grid over its own weights (emodna_jax/method/methods.py), trains each
    # point, and keeps the one its validator prefers, per task; the same protocol for every method.
    c.select = ml_collections.ConfigDict()
    # "FIELD=V1,V2;FIELD=V1,V2" (the Cartesian product). Each point trains into WORKDIR/grid/<point>/;
    # WORKDIR/selection.json records every point. "" = no selection: one plain run. The default's grid,
    # declared with the method (docs/decisions.md §11): the final fraction of each predicted class that is
    # pseudo-labelled, as class-balanced self-training declares it.
    c.select.grid = "pseudo.quantile_end=0.4,0.6,0.8"
    # Which validator chooses (higher is better): dev (You et al. 2019) | iwcv | source_uar |
    # source_neg_ce (these read the held-out speakers below) | snd | snd_features |
    # information_maximization (target only).
    c.select.validator = "dev"
    # Source speakers the grid's points hold out for the validators: "auto" = a fixed set per corpus
    # (labels.CORPORA's val_speakers; every fifth speaker of another corpus), or "spk1,spk2".
    c.select.val_speakers = "auto"
    # Train the chosen setting once more on the whole source (WORKDIR/refit/): its results.json is
    # the run's, so every method ends on the same source data, with a grid or without.
    c.select.refit = True

    parts = [p for p in arg.split(",") if p]
    if len([p for p in parts if p != "smoke"]) > 1:
        raise ValueError(f"configs/default.py:{arg} names several methods; give one method per config")
    for part in parts:
        if part == "smoke":
            shrink_for_smoke_test(c)
        else:
            methods.apply(c, part)  # refuses an unknown name
    return c


def shrink_for_smoke_test(c: ml_collections.ConfigDict) -> None:
    """Tiny model and schedule so that a whole run takes seconds on a CPU."""
    c.model.filters = 8
    c.model.dilations = 3
    c.model.hidden_dim = 32
    c.model.embed_dim = 16
    c.batch_size = 16
    c.num_steps = 12
    c.pseudo.warmup_steps = 4
    c.lr_warmup_steps = 2
    c.log_every = 4
    c.checkpoint_every = 6
    c.eval_batch_size = 32
    c.shuffle_buffer = 64
    c.select.grid = ""  # one plain run; tests of the selection declare their own grids
