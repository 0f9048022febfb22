"""Dataset export formats: YOLO, COCO (RF-DETR layout + one file), CVAT for video 1.1, AVA CSV.

Pure library (no database, no web). `build.build_exports` decodes the video once, writes
the delivered frames as JPEG, then each writer adds its files; every format is zipped.
"""
