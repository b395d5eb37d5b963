"""Supervised fine-tuning on s1K: chat formatting + label masking, the SFT runner, the launcher, the memory planner."""
