# Every target sets up .venv itself (scripts/setup.sh) on a fresh machine.
.PHONY: train test bench accuracy
train:  ## Emo-DNA on the embedded synthetic corpora -> runs/default
	bash scripts/run_default.sh
test:   ## the test suite (CPU, 4 forced devices)
	bash scripts/test.sh
bench:  ## speed benchmark -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/speed_benchmark.py
# The headline methods and the default's ablations (benchmarks/accuracy_benchmark.py METHODS, ABLATIONS).
ACCURACY_METHODS = source_only,adabn,mmd,dann,coral,pseudo_label,self_training_balanced,emodna_literal,emodna,emodna_no_decoupling,emodna_no_corpus_align,emodna_no_class_align,emodna_fixed_threshold,emodna_prototype_align
accuracy:  ## the cross-corpus table of every registered method, 6 tasks x 3 seeds, on ../shared/corpora (resumable; hours on a 2-core CPU) -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/accuracy_benchmark.py --methods=$(ACCURACY_METHODS) --write_results
