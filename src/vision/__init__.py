"""Data Forge computer vision: decode, propagate boxes, score confidence, sample frames.

A pure library: numpy arrays and small dataclasses in and out, no database, no web.
Boxes are always ``xyxy`` float32 in full-resolution pixels unless a docstring says otherwise.
"""
