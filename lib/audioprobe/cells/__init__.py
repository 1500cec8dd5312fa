"""Recurrent cells and gates: the CfC (ncps reference and a fast twin) and the LIF gate."""
