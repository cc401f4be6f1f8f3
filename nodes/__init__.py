"""ComfyUI nodes of PAL4VST (classic node API: NODE_CLASS_MAPPINGS)."""

from .detect_node import PALDetect, PALScore
from .model_node import PALLoadModel
from .zoom_node import PALComposite, PALZoomCrop

NODE_CLASS_MAPPINGS = {
    "PALLoadModel": PALLoadModel,
    "PALDetect": PALDetect,
    "PALScore": PALScore,
    "PALZoomCrop": PALZoomCrop,
    "PALComposite": PALComposite,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PALLoadModel": "PAL Load Model",
    "PALDetect": "PAL Detect",
    "PALScore": "PAL Score",
    "PALZoomCrop": "PAL Zoom Crop",
    "PALComposite": "PAL Composite",
}
