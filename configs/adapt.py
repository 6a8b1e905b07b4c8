"""Your own recordings: adapt from the labelled corpora you have to a folder of unlabelled audio.

  python train.py --config=configs/adapt.py --config.target=folder:PATH --config.corpora_root=ROOT \
      --workdir=DIR
  python eval.py --workdir=DIR --predict=PATH     # -> DIR/predictions.csv (long files by segments)

The default method (Emo-DNA, configs/default.py) with three fields chosen when the run starts
(emodna_jax/train/recipe.py), each overridable:
* source: every labelled corpus found as ROOT/<corpus> (emodb, emovo, casia, ravdess, savee), or
  the ones named, e.g. --config.source=casia,emodb. Several corpora form one source
  (emodna_jax/audio/source_pool.py): each standardised by its own statistics, source batches balanced
  across them, and (multi_source="per_corpus", the recipe's default) one corpus id each in the
  train step: D = sources + target corpus prototypes, corpus classes and per-corpus BatchNorm rows,
  the corpus-level alignment between the pooled sources and the target (per source with
  --config.loss.corpus_align_per_source=True; --config.multi_source=pooled: one id for all sources).
* classes: angry, fear, happy, neutral, sad, those every source has (--config.classes=... to choose).
* task: the run's name in results.json, from what it did, e.g. "casia+emodb2calls".
Like the default it selects its settings over 4 label-free grid points and retrains the chosen one
(--config.select.grid="" trains once): 9.4 min on 2 busy CPU cores for CASIA + EmoDB -> 40 files
(README "Your own recordings" has the output).
`configs/adapt.py:smoke` shrinks everything for tests; `configs/adapt.py:NAME` runs method NAME.
The run ends with the histogram of predicted classes (no labels, so no UAR) and a warning when
one class takes most predictions (reporting.COLLAPSE_SHARE).
"""

import os

import ml_collections

from configs import cross_corpus, default
from emodna_jax.train import recipe


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = default.get_config(arg)
    c.target = ""  # required: folder:PATH (class sub-folders, a flat folder or manifest.csv)
    c.source = recipe.AUTO  # every labelled corpus under corpora_root, or comma-separated names
    c.classes = recipe.AUTO  # recipe.PREFERRED_CLASSES that every source has
    c.task = recipe.AUTO  # "<sources joined by +>2<target folder's name>"
    # One corpus id per source (D = sources + target), as the method's corpus decoupling is stated
    # (docs/decisions.md §10); "pooled" gives all sources one id.
    c.multi_source = "per_corpus"
    c.corpora_root = os.path.normpath(os.path.join(cross_corpus.REPO, "..", "shared", "corpora"))
    return c
