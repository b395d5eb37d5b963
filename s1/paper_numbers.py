"""The paper's numbers (arXiv:2501.19393, Tables 1-4), shown beside a reproduction's — reference only, never computed."""

# Training hyperparameters (paper §4.1 / its train/sft.sh), keyed like TrainConfig.
HYPERPARAMETERS = {
    "epochs": 5,
    "learning_rate": 1e-5,
    "warmup_ratio": 0.05,
    "adam_beta1": 0.9,
    "adam_beta2": 0.95,
    "weight_decay": 1e-4,
    "global_batch_size": 16,
    "micro_batch_size": 1,
    "block_size": 32768,
    "bf16": True,
    "gradient_checkpointing": True,
}

# Curation funnel: 59,029 → 54,116 → 51,581 → 24,496 → 1,000.
FUNNEL = [
    ("pool", 59029),
    ("quality: API errors / missing fields", 54116),
    ("quality: formatting", 51581),
    ("difficulty", 24496),
    ("diversity + length", 1000),
]

# Table 1 (AIME24 / MATH500 / GPQA Diamond), accuracy in %.
TABLE1 = {
    "Qwen2.5-32B-Instruct": {"aime24": 26.7, "math500": 84.0, "gpqa": 49.0},
    "s1-32B without budget forcing": {"aime24": 50.0, "math500": 92.6, "gpqa": 56.6},
    "s1-32B with budget forcing": {"aime24": 56.7, "math500": 93.0, "gpqa": 59.6},
    "s1.1-32B without budget forcing": {"aime24": 56.7, "math500": 94.4, "gpqa": 60.6},
    "s1.1-32B, 2 x Wait": {"aime24": 56.7, "math500": 95.4, "gpqa": 63.6},
    "o1-preview": {"aime24": 44.6, "math500": 85.5, "gpqa": 73.3},
}

# The protocol every number below was measured under (paper §4.1 / the release's eval/commands.sh): greedy decoding,
# one sample per question, 32,768 generated tokens. A run under another protocol (experiment=r1_protocol:
# temperature 0.6, n = 64) shows none of them (s1.eval.tables.protocol_mismatch).
PAPER_PROTOCOL = {"temperature": 0.0, "samples_per_question": 1, "max_new_tokens": 32768}

# The setting of each Table 1 cell: model, method (s1.eval.methods names) and its parameter. s1-32B's "with budget
# forcing" states none: its AIME24 56.7 equals Table 3's budget-forcing Performance (the best point of the sweep),
# its MATH500 / GPQA 93.0 / 59.6 equal Table 4's 2x "Wait" row (whose AIME24 is 53.3), so the two halves sit beside
# those two settings (s1.eval.tables.table1).
TABLE1_SETTINGS = {
    "Qwen2.5-32B-Instruct": {"model": "base", "method": "no_bf"},
    "s1-32B without budget forcing": {"model": "trained", "method": "no_bf"},
    "s1-32B with budget forcing": {"model": "trained", "aime24": "best of the budget-forcing sweep (Table 3)",
                                   "math500": ("wait", 2), "gpqa": ("wait", 2)},
    "s1.1-32B without budget forcing": {"model": "trained", "method": "auto"},
    "s1.1-32B, 2 x Wait": {"model": "trained", "method": ("wait", 2)},
}

# Table 3 (AIME24): Control %, Scaling (average slope; the paper does not state its unit, ours is
# s1.eval.metrics.SCALING_UNIT, so compare signs and order, not values), Performance %.
TABLE3 = {
    "budget forcing": (100, 15, 56.7),
    "token-conditional control": (40, -24, 40.0),
    "token-conditional + budget forcing": (100, 13, 40.0),
    "step-conditional control": (60, 3, 36.7),
    "step-conditional + budget forcing": (100, 6, 36.7),
    "class-conditional control": (50, 25, 36.7),
    "rejection sampling": (100, -35, 40.0),
}

# Table 4 (s1-32B, budget forcing extrapolation ablations: the end of thinking ignored twice, then the string).
TABLE4 = {
    "no extrapolation": {"aime24": 50.0, "math500": 93.0, "gpqa": 57.6},
    "none": {"aime24": 50.0, "math500": 90.2, "gpqa": 55.1},
    "Alternatively": {"aime24": 50.0, "math500": 92.2, "gpqa": 59.6},
    "Hmm": {"aime24": 50.0, "math500": 93.0, "gpqa": 59.6},
    "Wait": {"aime24": 53.3, "math500": 93.0, "gpqa": 59.6},
}

# Models whose runs the paper's numbers describe; other models get the numbers as "reference only".
PAPER_MODELS = ("Qwen/Qwen2.5-32B-Instruct", "simplescaling/s1-32B", "simplescaling/s1.1-32B")
