"""Cross-corpus tasks on the real corpora: `configs/cross_corpus.py:TASK,METHOD[,smoke]`.

TASK is SOURCE2TARGET from the letters c (CASIA), b (EmoDB), e (EMOVO), r (RAVDESS), s (SAVEE), e.g.
c2b = labelled CASIA + unlabelled EmoDB, tested on EmoDB; several source letters pool labelled corpora
(ce2b: CASIA and EMOVO -> EmoDB, emodna_jax/audio/source_pool.py); a side may also be a builder name, e.g.
synthetic_a2synthetic_b (the synthetic corpora, where choices are made without a real target's labels).
METHOD is one of emodna_jax.method.methods.METHODS (default: emodna); `--config.method=NAME` does the same.
The corpora are read from `config.corpora_root`/<corpus> (default: ../shared/corpora beside the
checkout). The 5 shared classes and the whole target corpus (unlabelled training data and test set)
follow the authors' protocol.
"""

import os

import ml_collections

from configs import default
from emodna_jax.audio import labels
from emodna_jax.method import methods

# The task letters and the synthetic corpora, as declared in labels.CORPORA (letters listed by name).
LETTERS = {c.letter: c.name for c in sorted(labels.CORPORA.values(), key=lambda c: c.name) if c.letter}
SYNTHETIC = tuple(name for name, c in labels.CORPORA.items() if c.synthetic_split)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _side(part: str) -> str:
    """'c' -> 'casia'; several letters name several sources: 'ce' -> 'casia,emovo'."""
    if part in LETTERS:
        return LETTERS[part]
    return ",".join(LETTERS[letter] for letter in part) if part and set(part) <= set(LETTERS) else part


def parse_task(task: str) -> tuple[str, str]:
    """'c2b' -> ('casia', 'emodb'); several source letters pool several labelled corpora (leave one
    corpus out): 'ce2b' -> ('casia,emovo', 'emodb'). A message lists the letters when malformed."""
    parts = task.split("2")
    names = [_side(p) for p in parts]
    known = set(LETTERS.values()) | set(SYNTHETIC)
    sources = names[0].split(",")
    if (len(parts) != 2 or not all(n in known for n in sources + names[1:]) or names[1] in sources
            or len(set(sources)) != len(sources) or "," in names[1]):
        raise ValueError(f"task {task!r} is not SOURCE2TARGET with different letters of "
                         f"{', '.join(f'{k} ({v})' for k, v in LETTERS.items())} or names of "
                         f"{', '.join(SYNTHETIC)}, e.g. c2b or synthetic_a2synthetic_b")
    return names[0], names[1]


def get_config(arg: str = "c2b,emodna") -> ml_collections.ConfigDict:
    parts = [p for p in arg.split(",") if p]
    if not parts:
        raise ValueError("configs/cross_corpus.py needs TASK,METHOD, e.g. configs/cross_corpus.py:c2b,emodna")
    task, rest = parts[0], parts[1:]
    unknown = [p for p in rest if p not in methods.METHODS and p != "smoke"]
    if unknown:
        raise ValueError(f"unknown config argument(s) {unknown}; methods are {', '.join(methods.METHODS)}")
    c = default.get_config(",".join(rest))  # the base (emodna) unless a method is named
    c.task = task
    c.source, c.target = parse_task(task)
    c.corpora_root = os.path.normpath(os.path.join(REPO, "..", "shared", "corpora"))
    return c
