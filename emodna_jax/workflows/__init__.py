"""What eval.py and a selection run call: restore-and-evaluate, labelling files, model selection."""
