"""Legends of what the pictures and pages show: the row labels of traversal grids (directions.row_label), shared by
the grids (plots.py), the MLflow runs of a sweep and the explorer."""

from stylediscover.directions import QUALITY_THRESHOLDS

LABEL_LEGEND = (
    "Row label '5 wall_hue 0.52 x38.6 L0-1 clean': direction 5 moves wall_hue most, by 0.52 (normalised: of the "
    "attribute's range, a hue's of half a turn) at its recommended strength s; x38.6: 38.6 times the next most "
    "moved attribute (x inf: no other moves); L0-1: it edits W+ layers 0 to 1; quality: clean (x >= "
    f"{QUALITY_THRESHOLDS['clean_margin']:g}), entangled (below), inactive (response < "
    f"{QUALITY_THRESHOLDS['inactive_below']:g}). Columns: strengths from -s to +s; the middle one is the code "
    "unedited.")
