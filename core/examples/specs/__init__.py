"""Example pipeline specs, one per recommended architecture (batch, micro-batch, Lambda, Kappa, Lakehouse)."""
