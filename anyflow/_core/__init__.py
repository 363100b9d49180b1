"""anyflow's pure core: the reducer and the data it folds.

Nothing in this package imports anyio, reads a clock or draws a random number;
``tests/core/test_purity.py`` holds it to that.
"""
