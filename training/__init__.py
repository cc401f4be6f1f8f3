"""Training kit: reproduce the PAL4VST segmenter, fine-tune it on a few labelled images, evaluate
like the paper, export. Standalone: nothing here is imported by the nodes or the extension."""
