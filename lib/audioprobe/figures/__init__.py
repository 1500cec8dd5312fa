"""PNG figures drawn with matplotlib (Agg), one module per experiment."""
