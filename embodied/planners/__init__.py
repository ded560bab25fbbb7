"""Planners: the symbolic oracle, SayCan and PaLM-E, behind one seam."""
