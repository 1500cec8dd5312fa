"""Audio core: file IO (soundfile), resampling (scipy), log-mel (torch.stft), SNR mixing."""
