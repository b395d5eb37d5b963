"""s1: simple test-time scaling — curation, SFT and budget-forcing evaluation."""
