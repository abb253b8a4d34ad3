"""Analyses of models and recorded runs: one module per question the papers ask."""
