"""Evaluation: grading, methods (budget forcing and the paper's baselines), metrics, reports."""
