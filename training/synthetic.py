"""Synthetic artifacts with known masks (:mod:`pal4vst.learn.synthetic`), as a command:

    python -m training.synthetic OUT --train 200 --val 40 --size 128 [--kinds noise,solid]
"""

from pal4vst.learn.synthetic import KINDS, corrupt, main, make_sample, texture, write_dataset, write_example_set

__all__ = ["KINDS", "corrupt", "make_sample", "texture", "write_dataset", "write_example_set"]

if __name__ == "__main__":
    main()
