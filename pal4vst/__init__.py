"""PAL4VST: find, score and fix the perceptual artifacts of generated images.

The framework-free core: the segmenter (:mod:`pal4vst.model`), safe checkpoint loading
(:mod:`pal4vst.checkpoint`), weights resolution (:mod:`pal4vst.weights`), detection
(:mod:`pal4vst.detect`), PAR scoring (:mod:`pal4vst.score`), and zoom-in refinement geometry
(:mod:`pal4vst.regions`, :mod:`pal4vst.crops`, :mod:`pal4vst.composite`).
"""

__version__ = "0.1.0"
