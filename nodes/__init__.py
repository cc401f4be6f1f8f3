"""ComfyUI nodes of PAL4VST (classic node API: NODE_CLASS_MAPPINGS)."""

from .detailer import PALDetailer
from .detect_node import PALDetect, PALScore
from .impact import PALDetectorProvider, PALDetectSEGS
from .model_node import PALLoadModel
from .teach_nodes import PALEditMask, PALFineTune, PALLoadMask, PALSaveExample
from .zoom_node import PALComposite, PALZoomCrop

NODE_CLASS_MAPPINGS = {
    "PALLoadModel": PALLoadModel,
    "PALDetect": PALDetect,
    "PALScore": PALScore,
    "PALZoomCrop": PALZoomCrop,
    "PALComposite": PALComposite,
    "PALDetailer": PALDetailer,
    "PALDetectSEGS": PALDetectSEGS,
    "PALDetectorProvider": PALDetectorProvider,
    "PALEditMask": PALEditMask,
    "PALLoadMask": PALLoadMask,
    "PALSaveExample": PALSaveExample,
    "PALFineTune": PALFineTune,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PALLoadModel": "PAL Load Model",
    "PALDetect": "PAL Detect",
    "PALScore": "PAL Score",
    "PALZoomCrop": "PAL Zoom Crop",
    "PALComposite": "PAL Composite",
    "PALDetailer": "PAL Detailer",
    "PALDetectSEGS": "PAL Detect (SEGS)",
    "PALDetectorProvider": "PAL Detector Provider (Impact)",
    "PALEditMask": "PAL Edit Mask (for the mask editor)",
    "PALLoadMask": "PAL Load Mask (any mask file)",
    "PALSaveExample": "PAL Save Example",
    "PALFineTune": "PAL Fine-Tune",
}
