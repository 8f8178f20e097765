"""Segmentation of neurons in EM volumes."""
