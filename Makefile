# The two commands of the README. Both create or reuse .venv first.
.PHONY: figures test setup

setup:
	bash scripts/bootstrap.sh

figures: setup
	.venv/bin/python -m resnetlab figures

test: setup
	.venv/bin/python -m pytest
