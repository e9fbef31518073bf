"""Data: the EgoPressure on-disk layout, the synthetic generator, the reader and clips."""
