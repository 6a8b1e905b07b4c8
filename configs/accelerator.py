"""Cross-corpus tasks with a schedule for a GPU or TPU: `configs/accelerator.py:TASK,METHOD`.

The same run as `configs/cross_corpus.py:TASK,METHOD` (same method, model, losses, thresholds,
front end, normalisation and protocol); only the schedule fields below differ (SCHEDULE_FIELDS,
checked by tests/test_accelerator_config.py). The CPU schedule of configs/default.py (32 source + 32
target examples a step, 200 steps) is sized for a few minutes on 2 cores; on an accelerator the
step time hardly grows with the batch, so this one takes 8x the batch and 10x the steps.

Not measured: no accelerator was available when this config was written, so neither its wall time
nor its accuracy is known, and every number in benchmarks/RESULTS.md comes from the CPU schedule.
The batch (256) and eval batch (1024) divide by 1, 2, 4, 8, 16, 32, 64, 128 and 256 devices.
"""

import ml_collections

from configs import cross_corpus

# Every field this config changes; everything else is configs/cross_corpus.py's value.
SCHEDULE_FIELDS = ("batch_size", "num_steps", "lr_warmup_steps", "pseudo.warmup_steps",
                   "pseudo.centroid_every", "log_every", "checkpoint_every", "eval_batch_size",
                   "shuffle_buffer")


def get_config(arg: str = "c2b,emodna") -> ml_collections.ConfigDict:
    """configs/cross_corpus.py:ARG with the accelerator schedule (`smoke` is refused: use that file's)."""
    if "smoke" in arg.split(","):
        raise ValueError("configs/accelerator.py has no smoke variant (it only scales the schedule up); "
                         "use configs/cross_corpus.py:TASK,METHOD,smoke")
    c = cross_corpus.get_config(arg)
    # 256 source + 256 target examples a step: BatchNorm, MMD and the per-class threshold statistics
    # see about 50 examples of each class a step instead of about 6, and the step stays cheap.
    c.batch_size = 256
    # 2000 x 256 = 512,000 examples a stream: about 500 epochs of CASIA's 1,000 five-class files and
    # 1,250 of EmoDB's 408 (CAAM: 512 a step for 120 epochs). The learning rate stays 1e-3 (AdamW's
    # step size does not scale with the batch the way SGD's does).
    c.num_steps = 2000
    # The step counts below keep the CPU schedule's fractions of the run (x 10 with num_steps):
    c.lr_warmup_steps = 100  # 5 % of the run, as 10 of 200
    c.pseudo.warmup_steps = 400  # a fifth of the run on source labels (+ corpus losses), as 40 of 200
    c.pseudo.centroid_every = 250  # the same number of centroid refreshes; divides checkpoint_every
    c.log_every = 100  # 20 progress lines, as at 20 of 200
    c.checkpoint_every = 500  # 4 checkpoints a run, as at 50 of 200
    # Inference over a whole corpus in few calls; a multiple of any power-of-two device count <= 1024.
    c.eval_batch_size = 1024
    # At least 4 batches of examples to shuffle over (the largest corpus here has 1,000 files, so
    # every corpus is shuffled whole either way).
    c.shuffle_buffer = 4096
    # pseudo.threshold_ema = 0 and model.bn_momentum = 0 tie those rates to num_steps already.
    return c
