"""Evaluation at scale: prompt suites with their facts, a detector scorer, paired statistics.

``facts`` holds the schemas (what a prompt asks for), ``suites`` the prompt generators,
``rules`` and ``scoring`` the pure scoring rules over detections, ``detector`` the
open-vocabulary detectors that produce those detections, and ``stats`` the paired tables.
"""
