"""The general road model (``model``) and SUMO's files in (``sumo``): see each module."""
