# Every target sets up .venv itself (scripts/setup.sh) on a fresh machine.
.PHONY: train test bench accuracy
train:  ## Emo-DNA on the embedded synthetic corpora -> runs/default
	bash scripts/run_default.sh
test:   ## the test suite (CPU, 4 forced devices)
	bash scripts/test.sh
bench:  ## speed benchmark -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/speed_benchmark.py
accuracy:  ## the cross-corpus table on ../shared/corpora (resumable; hours on a 2-core CPU) -> benchmarks/RESULTS.md
	bash scripts/setup.sh && .venv/bin/python benchmarks/accuracy_benchmark.py --write_results
