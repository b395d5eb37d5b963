"""Evaluation: methods (budget forcing and the paper's baselines), metrics, reports."""
