"""s1K curation: pool → validate → quality → decontaminate → difficulty → domains → diversity → export.

Each step is a plain function over a list of records (dicts in the schema of
s1/data/schema.py). Filtering steps return a StepResult (kept + dropped with
a reason) and never drop silently; scripts/curate.py chains them and the
Funnel counts every step per source and reason.
"""
