"""Thin library behind the book: CAM engine, receptive fields, models, data, metrics, plots."""
