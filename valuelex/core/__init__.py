"""The bottom layer: static project paths, errors, display rules, precision of the numbers written, and saving.

Nothing here imports any other part of ValueLex (``tests/test_layers.py`` checks it).
"""
