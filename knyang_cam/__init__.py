"""knyang-cam: name your cats live from a webcam or a video."""

__version__ = "0.1.0"
