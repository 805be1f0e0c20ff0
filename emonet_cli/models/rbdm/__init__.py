"""RBDM: DISCOVER's multitask MobileNetV2 (8 expressions, valence and arousal)."""
