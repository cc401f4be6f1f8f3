"""The segmenter (Swin + UPerNet), its checkpoints and where their files come from."""
