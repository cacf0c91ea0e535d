"""Contract double of G2PW's config.py (not the model's)."""
model_source = "bert-base-chinese"
