"""Learning, in the core so that every host can teach a model: the training recipe
(:mod:`.config`), datasets and augmentation (:mod:`.data`), the loss, the loop and its trainer
(:mod:`.engine`), IoU (:mod:`.metrics`), the optimiser and schedule (:mod:`.optim`), ImageNet
starting weights (:mod:`.pretrained`). The command lines of the training kit (``training/``)
and the hosts' fine-tune (:mod:`pal4vst.learn.teach`) are built on these."""
