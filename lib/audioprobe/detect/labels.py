"""The two classes and the sample rate every detect clip has."""

SR = 16000
SPEECH, NONSPEECH = "SPEECH", "NONSPEECH"
