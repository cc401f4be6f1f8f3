"""Zoom-in repair: regions of a mask, square crops around them, inpainting, pasting back."""
