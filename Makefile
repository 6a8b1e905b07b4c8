# Every target sets up .venv itself (scripts/setup.sh) on a fresh machine.
.PHONY: train test bench accuracy accuracy-corpus
train:  ## Emo-DNA on the embedded synthetic corpora -> runs/default
	bash scripts/run_default.sh
test:   ## the test suite (CPU, 4 forced devices)
	bash scripts/test.sh
bench:  ## speed benchmark -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/speed_benchmark.py
ACCURACY_METHODS = source_only,mmd,dann,coral,pseudo_label,emodna,emodna_no_decoupling,emodna_no_corpus_align,emodna_no_class_align,emodna_fixed_threshold,emodna_floor_0_7,emodna_floor_0_7_no_decoupling,emodna_floor_0_7_no_corpus_align,emodna_floor_0_7_no_class_align,emodna_floor_0_7_shared_trunk,emodna_full_class_align
accuracy:  ## the cross-corpus table at the adopted default (speaker normalisation) on ../shared/corpora (resumable; hours on a 2-core CPU) -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/accuracy_benchmark.py --methods=$(ACCURACY_METHODS) \
	  --set=normalization=speaker "--section=Accuracy with speaker normalisation (the adopted default)" --write_results
accuracy-corpus:  ## the earlier 211-run table, every method at per-corpus standardisation -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/accuracy_benchmark.py --write_results
