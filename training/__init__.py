"""Training kit: reproduce the PAL4VST segmenter, fine-tune it on a few labelled images, evaluate
like the paper, export, make synthetic data. Command lines over the core's learning package
(:mod:`pal4vst.learn`: recipe, data, loop, metrics), which the hosts' fine-tune uses too."""
