"""reason lane: codec vs classifier encoders as the audio front of a frozen small LM (ReasonAQA)."""
