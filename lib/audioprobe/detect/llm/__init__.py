"""detect lane, audio-LLM part: Qwen2-Audio (real or a tiny random stand-in), A/B prompt scoring, LoRA, OPRO."""
